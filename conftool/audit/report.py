"""The audit in the province's own terms: "LAN 129/129 · Internet 127/129 · TSLCD 120/129 · meeting-ready
118/129 · drift 3 · compliance 96 %", and the failing sites grouped by district.

Pure functions of a `RunRecord` and the inventory, shared by the terminal view and `--json`.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from conftool.audit.results import Finding, RunRecord, Status
from conftool.inventory import Inventory

logger = logging.getLogger(__name__)

LINK_LABELS = (("lan", "LAN"), ("internet", "Internet"), ("dedicated", "TSLCD"))
BAD = (Status.FAIL, Status.ERROR)


@dataclass
class LinkCount:
    ok: int = 0
    judged: int = 0  # sites with an ok/fail/error verdict for this link
    not_probed: int = 0  # sites whose probe was skipped (with a reason)


@dataclass
class ProvinceSummary:
    sites: int
    links: dict[str, LinkCount] = field(default_factory=dict)
    meeting_ready: int = 0
    meeting_judged: int = 0
    drift: int = 0  # devices whose running config differs from the intended
    compliance_ok: int = 0
    compliance_judged: int = 0
    statuses: dict[str, int] = field(default_factory=dict)

    @property
    def compliance_pct(self) -> float | None:
        if not self.compliance_judged:
            return None
        return round(100.0 * self.compliance_ok / self.compliance_judged, 1)

    def line(self) -> str:
        parts = []
        for kind, label in LINK_LABELS:
            c = self.links.get(kind)
            if c is None or (c.judged == 0 and c.not_probed == 0):
                continue
            text = f"{label} {c.ok}/{c.judged}" if c.judged else f"{label} –"
            if c.not_probed:
                text += f" ({c.not_probed} not probed)"
            parts.append(text)
        if self.meeting_judged:
            parts.append(f"meeting-ready {self.meeting_ready}/{self.meeting_judged}")
        parts.append(f"drift {self.drift}")
        pct = self.compliance_pct
        parts.append(f"compliance {pct:g} %" if pct is not None else "compliance –")
        return " · ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "sites": self.sites,
            **self.statuses,
            "links": {k: {"ok": c.ok, "total": c.judged, "not_probed": c.not_probed} for k, c in self.links.items()},
            "meeting_ready": {"ok": self.meeting_ready, "total": self.meeting_judged},
            "drift": self.drift,
            "compliance_pct": self.compliance_pct,
            "line": self.line(),
        }


def summarize(run: RunRecord) -> ProvinceSummary:
    by_site: dict[str, list[Finding]] = defaultdict(list)
    for f in run.findings:
        by_site[f.site].append(f)
    s = ProvinceSummary(sites=len(by_site), statuses=run.summary())
    s.links = {k: LinkCount() for k, _ in LINK_LABELS}
    for fs in by_site.values():
        reach = {f.kind: f for f in fs if f.check == "reachability"}
        for kind, _ in LINK_LABELS:
            link = reach.get(kind)
            if link is None:
                continue
            c = s.links[kind]
            if link.status == Status.SKIPPED:
                c.not_probed += 1
            else:
                c.judged += 1
                c.ok += link.status == Status.OK
        judged = [f for f in reach.values() if f.status != Status.SKIPPED]
        if judged:
            s.meeting_judged += 1
            main = reach.get("dedicated") or reach.get("internet")
            if (main is not None and main.status == Status.OK) and all(f.status == Status.OK for f in judged):
                s.meeting_ready += 1
    s.drift = sum(1 for f in run.findings if f.check == "drift" and f.status == Status.FAIL)
    comp = [f for f in run.findings if f.check == "compliance" and f.status in (Status.OK, Status.FAIL)]
    s.compliance_judged = len(comp)
    s.compliance_ok = sum(f.status == Status.OK for f in comp)
    return s


def failing_by_district(run: RunRecord, inv: Inventory) -> dict[str, list[tuple[str, list[Finding]]]]:
    """{district label: [(site label, its failed/errored findings)]}, province first, then districts by id."""
    bad: dict[str, list[Finding]] = defaultdict(list)
    for f in run.findings:
        if f.status in BAD:
            bad[f.site].append(f)
    groups: dict[tuple[int, str], list[tuple[str, list[Finding]]]] = defaultdict(list)
    labels: dict[tuple[int, str], str] = {}
    level_order = {"province": 0, "district": 1, "commune": 2}

    def order(sid: str) -> tuple[int, str]:
        site = inv.find(sid)
        return (level_order.get(site.level.value, 3) if site else 3, sid)

    for sid in sorted(bad, key=order):
        site = inv.find(sid)
        if site is None:
            key, label, name = (2, "?"), "?", sid
        else:
            d = inv.district_of(site)
            if d is None:
                key, label = (0, site.id), f"{site.full_name} ({site.id})"
            else:
                key, label = (1, d.id), f"{d.full_name} ({d.id})"
            name = f"{site.full_name} ({site.id})"
        labels[key] = label
        groups[key].append((name, bad[sid]))
    return {labels[k]: groups[k] for k in sorted(groups)}


def finding_label(f: Finding) -> str:
    return f"{f.check}:{f.kind}" if f.kind else f.check
