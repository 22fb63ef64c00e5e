"""Audit results as plain data: the runner produces them, the store keeps them, reports and alerts read them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    OK = "ok"
    FAIL = "fail"
    ERROR = "error"  # the check could not run (unreachable device, timeout, parser failure)
    SKIPPED = "skipped"  # does not apply, or its prerequisite is missing; always carries a reason


@dataclass
class Finding:
    """One verdict of one check on one site (and device or link).

    ``kind`` says what was judged: a link kind for reachability, an interface, a rule id for compliance.
    """

    site: str
    check: str
    kind: str
    status: Status
    detail: str = ""
    device: str | None = None
    severity: str = "medium"
    data: dict[str, Any] = field(default_factory=dict)  # metrics, diff, fix text …

    def as_item(self) -> dict[str, Any]:
        """The §9 item shape: {"site", "device", "kind", "status", "detail"} (+ check, data)."""
        d = asdict(self)
        d["status"] = self.status.value
        d["kind"] = f"{self.check}:{self.kind}" if self.kind else self.check
        d["check"] = self.check
        return d

    @property
    def key(self) -> tuple[str, str, str, str]:
        """Identity across runs, for diffs and alerts."""
        return (self.site, self.device or "", self.check, self.kind)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class RunRecord:
    """A whole audit run as stored."""

    started_at: datetime
    finished_at: datetime
    selector: str
    checks: list[str]
    findings: list[Finding]
    province: str = ""
    id: int | None = None

    def summary(self) -> dict[str, int]:
        out = {s.value: 0 for s in Status}
        for f in self.findings:
            out[f.status.value] += 1
        return out
