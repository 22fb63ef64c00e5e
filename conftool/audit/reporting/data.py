"""What a report shows, computed once from the store and the inventory; the HTML and Markdown views only format it.

Counting is delegated to `conftool.audit.report.summarize` (the terminal summary), applied to the whole run and
to each district's share of it, so the HTML tiles, the district table and `conftool audit run` never disagree.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from conftool.audit.report import LINK_LABELS, ProvinceSummary, summarize
from conftool.audit.results import Finding, RunRecord, Status
from conftool.audit.store import AuditStore, StoreError
from conftool.inventory import Inventory, Level, Site

logger = logging.getLogger(__name__)

TARGET_PCT = 100.0  # the province's own target: every agency on LAN, Internet and TSLCD, every commune meeting-ready
BAD = (Status.FAIL, Status.ERROR)


@dataclass
class Kpi:
    key: str  # i18n label key
    ok: int
    total: int
    not_probed: int = 0
    target_pct: float = TARGET_PCT

    @property
    def pct(self) -> float | None:
        return round(100.0 * self.ok / self.total, 1) if self.total else None

    @property
    def met(self) -> bool:
        return self.pct is not None and self.pct >= self.target_pct

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "total": self.total, "pct": self.pct, "target_pct": self.target_pct,
                "not_probed": self.not_probed, "met": self.met}


@dataclass
class DistrictRow:
    id: str
    name: str
    sites: int
    kpis: dict[str, Kpi]
    failing: list[str]  # site ids

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "sites": self.sites,
                "kpis": {k: v.as_dict() for k, v in self.kpis.items()}, "failing": self.failing}


@dataclass
class TreeNode:
    id: str
    name: str
    state: str  # ok | fail | error | unknown
    children: list[TreeNode] = field(default_factory=list)


@dataclass
class FailureItem:
    site: str
    site_name: str
    district: str
    check: str
    device: str | None
    status: str
    detail: str
    fix: str
    severity: str


@dataclass
class TrendPoint:
    run: int
    at: datetime
    pct: dict[str, float | None]  # kpi key -> percent


@dataclass
class ReportData:
    province: str
    run: RunRecord
    kpis: list[Kpi]
    compliance_pct: float | None
    drift: int
    districts: list[DistrictRow]
    tree: TreeNode | None
    failures: list[FailureItem]
    trend: list[TrendPoint]
    failing_sites: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {"province": self.province, "run": self.run.id, "started_at": self.run.started_at.isoformat(),
                "kpis": {k.key: k.as_dict() for k in self.kpis}, "compliance_pct": self.compliance_pct,
                "drift": self.drift, "districts": [d.as_dict() for d in self.districts],
                "failing_sites": self.failing_sites,
                "failures": [f.__dict__ for f in self.failures],
                "trend": [{"run": p.run, "at": p.at.isoformat(), **p.pct} for p in self.trend]}


def kpis_of(s: ProvinceSummary) -> list[Kpi]:
    out = []
    for kind, _ in LINK_LABELS:
        c = s.links.get(kind)
        out.append(Kpi(kind, c.ok if c else 0, c.judged if c else 0, c.not_probed if c else 0))
    out.append(Kpi("meeting_ready", s.meeting_ready, s.meeting_judged))
    return out


def site_state(findings: list[Finding]) -> str:
    """Worst verdict of a site: fail > error > ok; only skipped (or nothing) is `unknown`."""
    statuses = {f.status for f in findings}
    if Status.FAIL in statuses:
        return "fail"
    if Status.ERROR in statuses:
        return "error"
    if Status.OK in statuses:
        return "ok"
    return "unknown"


def _sub(run: RunRecord, sites: set[str]) -> RunRecord:
    return RunRecord(run.started_at, run.finished_at, run.selector, run.checks,
                     [f for f in run.findings if f.site in sites], run.province, run.id)


def _district_key(inv: Inventory, site: Site) -> Site | None:
    return inv.district_of(site)


def build(store: AuditStore, inv: Inventory, run_id: int | None = None, trend_runs: int = 12) -> ReportData:
    """The report of one stored run (default: the latest) with the trend of the `trend_runs` runs up to it."""
    if run_id is None:
        latest = store.latest_run()
        if latest is None:
            raise StoreError("no audit run stored yet; run `conftool audit run` first")
        run = latest
    else:
        run = store.run(run_id)
    by_site: dict[str, list[Finding]] = defaultdict(list)
    for f in run.findings:
        by_site[f.site].append(f)
    total = summarize(run)

    # districts: the province site (and anything outside a district) first, then districts by id
    groups: dict[str, set[str]] = defaultdict(set)
    names: dict[str, str] = {}
    for sid in by_site:
        site = inv.find(sid)
        if site is None:
            groups["?"].add(sid)
            names["?"] = "?"
            continue
        d = _district_key(inv, site)
        key, name = (d.id, d.full_name) if d else (site.id, site.full_name)
        groups[key].add(sid)
        names[key] = name
    level_rank = {Level.PROVINCE: 0, Level.DISTRICT: 1, Level.COMMUNE: 2}

    def rank(key: str) -> tuple[int, str]:
        s = inv.find(key)
        return (level_rank.get(s.level, 3) if s else 9, key)

    districts = []
    for key in sorted(groups, key=rank):
        sids = groups[key]
        sub = summarize(_sub(run, sids))
        failing = sorted(s for s in sids if site_state(by_site[s]) in ("fail", "error"))
        districts.append(DistrictRow(key, names[key], len(sids), {k.key: k for k in kpis_of(sub)}, failing))

    failures = []
    for sid in sorted(by_site, key=lambda s: (rank(_dist_id(inv, s)), rank(s), s)):
        site = inv.find(sid)
        dist = inv.district_of(site) if site else None
        for f in by_site[sid]:
            if f.status not in BAD:
                continue
            check = f"{f.check}:{f.kind}" if f.kind else f.check
            failures.append(FailureItem(sid, site.full_name if site else sid, dist.full_name if dist else "",
                                        check, f.device, f.status.value, f.detail, str(f.data.get("fix") or ""),
                                        f.severity))
    failing_sites = sorted({f.site for f in failures})
    return ReportData(province=inv.province.name, run=run, kpis=kpis_of(total), compliance_pct=total.compliance_pct,
                      drift=total.drift, districts=districts, tree=_tree(inv, by_site), failures=failures,
                      trend=trend(store, run.id or 0, trend_runs), failing_sites=failing_sites)


def _dist_id(inv: Inventory, sid: str) -> str:
    site = inv.find(sid)
    if site is None:
        return "?"
    d = inv.district_of(site)
    return d.id if d else site.id


def _tree(inv: Inventory, by_site: dict[str, list[Finding]]) -> TreeNode | None:
    """Province → districts → communes, each coloured by its own state (a parent is not the sum of children)."""
    roots = inv.by_level(Level.PROVINCE)
    if not roots:
        return None

    def node(site: Site) -> TreeNode:
        return TreeNode(site.id, site.full_name, site_state(by_site.get(site.id, [])),
                        [node(c) for c in inv.children(site.id)])

    return node(roots[0])


def trend(store: AuditStore, upto: int, n: int) -> list[TrendPoint]:
    """KPI percentages of the last `n` runs up to run `upto`, oldest first."""
    points: list[TrendPoint] = []
    rid: int | None = upto
    while rid is not None and len(points) < n:
        rec = store.run(rid)
        s = summarize(rec)
        points.append(TrendPoint(rid, rec.started_at, {k.key: k.pct for k in kpis_of(s)}))
        rid = store.previous_run_id(rid)
    return list(reversed(points))
