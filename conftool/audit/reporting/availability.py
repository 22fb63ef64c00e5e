"""Monthly link availability from the stored reachability findings: what the province reports upward and what it
holds the telcos to.

How it is computed (also in docs/audit-report.md): each stored run is a sample of every link it probed. A sample
holds from its run's start until the next run's start, cut at the month's edges, at ``now`` and at ``max_gap``
(a longer silence — the scheduler was down — is *unobserved*, not up or down). A link's availability is the
time its samples said "up" (the probe got replies, whatever the quality) over its observed time; ``quality`` is
the share of observed time the link was also within the meeting thresholds (status ok). Groups (link kind,
telco, district) add up the seconds of their links, so a link watched longer weighs more.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from conftool.audit.errors import AuditError
from conftool.audit.results import Status
from conftool.audit.store import AuditStore, ResultRow, RunRow
from conftool.inventory import Inventory

logger = logging.getLogger(__name__)

GroupBy = Literal["link", "provider", "district"]
DEFAULT_MAX_GAP = timedelta(hours=24)


def month_bounds(month: str | None, now: datetime | None = None) -> tuple[datetime, datetime]:
    """[first instant, first instant of the next month) in UTC for 'YYYY-MM' (default: the current month)."""
    now = now or datetime.now(UTC)
    if month is None:
        y, m = now.year, now.month
    else:
        if not re.fullmatch(r"\d{4}-\d{2}", month) or not 1 <= int(month[5:]) <= 12:
            raise AuditError(f"--month {month!r}: expected YYYY-MM, e.g. {now:%Y-%m}")
        y, m = int(month[:4]), int(month[5:])
    start = datetime(y, m, 1, tzinfo=UTC)
    end = datetime(y + (m == 12), m % 12 + 1, 1, tzinfo=UTC)
    return start, end


@dataclass
class LinkAvailability:
    site: str
    kind: str
    provider: str
    district: str
    observed_s: float = 0.0
    up_s: float = 0.0
    ok_s: float = 0.0
    samples: int = 0

    @property
    def pct(self) -> float | None:
        return round(100.0 * self.up_s / self.observed_s, 3) if self.observed_s else None

    @property
    def quality_pct(self) -> float | None:
        return round(100.0 * self.ok_s / self.observed_s, 3) if self.observed_s else None


@dataclass
class GroupAvailability:
    key: str
    links: list[LinkAvailability] = field(default_factory=list)

    @property
    def observed_s(self) -> float:
        return sum(li.observed_s for li in self.links)

    @property
    def pct(self) -> float | None:
        obs = self.observed_s
        return round(100.0 * sum(li.up_s for li in self.links) / obs, 3) if obs else None

    @property
    def quality_pct(self) -> float | None:
        obs = self.observed_s
        return round(100.0 * sum(li.ok_s for li in self.links) / obs, 3) if obs else None

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "links": len(self.links), "availability_pct": self.pct,
                "quality_pct": self.quality_pct, "observed_h": round(self.observed_s / 3600, 2)}


@dataclass
class AvailabilityReport:
    month: str
    start: datetime
    end: datetime
    by: GroupBy
    runs: int
    groups: list[GroupAvailability]
    links: list[LinkAvailability]

    def worst(self, n: int = 10) -> list[LinkAvailability]:
        seen = [li for li in self.links if li.pct is not None]
        return sorted(seen, key=lambda li: (li.pct or 0.0, li.site, li.kind))[:n]

    def as_doc(self) -> dict[str, Any]:
        """The §9 shape: one item per group; the worst links ride along in the summary."""
        return {"summary": {"month": self.month, "by": self.by, "runs": self.runs, "groups": len(self.groups),
                            "links": len(self.links),
                            "worst": [{"site": li.site, "kind": li.kind, "provider": li.provider,
                                       "availability_pct": li.pct} for li in self.worst()]},
                "items": [g.as_dict() for g in self.groups]}


def _samples(store: AuditStore, start: datetime, end: datetime) -> list[tuple[int, datetime, list[ResultRow]]]:
    """Runs inside [start, end) plus the last run before `start` (its state holds into the month)."""
    with Session(store.engine) as s:
        prev = s.scalar(sa.select(sa.func.max(RunRow.id)).where(RunRow.started_at < start))
        q = sa.select(RunRow.id, RunRow.started_at).where(RunRow.started_at < end)
        q = q.where(RunRow.started_at >= start) if prev is None else q.where(RunRow.id >= prev)
        runs = s.execute(q.order_by(RunRow.started_at, RunRow.id)).all()
        ids = [r.id for r in runs]
        rows: dict[int, list[ResultRow]] = defaultdict(list)
        if ids:
            for r in s.scalars(sa.select(ResultRow).where(ResultRow.run_id.in_(ids),
                                                          ResultRow.check == "reachability")):
                s.expunge(r)
                rows[r.run_id].append(r)
    out = []
    for rid, at in runs:
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
        out.append((rid, at, rows.get(rid, [])))
    return out


def compute(store: AuditStore, inv: Inventory, month: str | None = None, by: GroupBy = "link", *,
            now: datetime | None = None, max_gap: timedelta = DEFAULT_MAX_GAP) -> AvailabilityReport:
    now = now or datetime.now(UTC)
    start, end = month_bounds(month, now)
    horizon = min(end, now)
    runs = _samples(store, start, end)
    links: dict[tuple[str, str], LinkAvailability] = {}
    counted = 0
    for i, (_rid, at, rows) in enumerate(runs):
        nxt = runs[i + 1][1] if i + 1 < len(runs) else horizon
        a, b = max(at, start), min(nxt, at + max_gap, horizon)
        span = (b - a).total_seconds()
        if at >= start:
            counted += 1
        if span <= 0:
            continue
        for r in rows:
            if r.status == Status.SKIPPED.value:
                continue
            la = links.get((r.site_id, r.kind))
            if la is None:
                la = links[(r.site_id, r.kind)] = _new_link(inv, r.site_id, r.kind)
            up = bool((r.data or {}).get("up", r.status == Status.OK.value)) and r.status != Status.ERROR.value
            la.observed_s += span
            la.up_s += span if up else 0.0
            la.ok_s += span if r.status == Status.OK.value else 0.0
            la.samples += 1
    groups: dict[str, GroupAvailability] = {}
    for la in sorted(links.values(), key=lambda x: (x.site, x.kind)):
        key = {"link": la.kind, "provider": f"{la.provider} · {la.kind}", "district": la.district}[by]
        groups.setdefault(key, GroupAvailability(key)).links.append(la)
    return AvailabilityReport(month=f"{start:%Y-%m}", start=start, end=end, by=by, runs=counted,
                              groups=[groups[k] for k in sorted(groups)], links=list(links.values()))


def _new_link(inv: Inventory, site_id: str, kind: str) -> LinkAvailability:
    site = inv.find(site_id)
    provider, district = "?", "?"
    if site is not None:
        link = site.link(kind) if kind in ("lan", "internet", "dedicated") else None
        provider = (link.provider if link is not None and link.provider else
                    ("(LAN)" if kind == "lan" else "?"))
        d = inv.district_of(site)
        district = f"{d.full_name} ({d.id})" if d else f"{site.full_name} ({site.id})"
    return LinkAvailability(site_id, kind, provider, district)
