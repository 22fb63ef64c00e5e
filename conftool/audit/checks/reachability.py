"""reachability: can each link carry a meeting? RTT, loss and jitter of a probe burst against the thresholds."""

from __future__ import annotations

import logging
from typing import Any

from conftool.audit.context import SiteContext
from conftool.audit.probes import ProbeResult
from conftool.audit.registry import register
from conftool.audit.results import Finding, Status

logger = logging.getLogger(__name__)

SEVERITY = {"dedicated": "high", "internet": "medium", "lan": "high"}


def judge(site_id: str, kind: str, res: ProbeResult | str, rtt_max: float, loss_max: float,
          jitter_max: float) -> Finding:
    """One link's verdict. Findings keep `up`, `rtt_ms`, `loss_pct`, `jitter_ms` in `data` (readiness reads them)."""
    base: dict[str, Any] = {"site": site_id, "check": Reachability.name, "kind": kind,
                            "severity": SEVERITY.get(kind, "medium")}
    if isinstance(res, str):
        return Finding(**base, status=Status.SKIPPED, detail=res)
    data = res.data()
    if res.error is not None:
        return Finding(**base, status=Status.ERROR, detail=f"probe could not run: {res.error}", data=data)
    where = f"{res.target.address} from {res.target.source}"
    if not res.up and res.disturbed:  # silence while our own kernel dropped packets is no verdict on the link
        return Finding(**base, status=Status.ERROR, data=data,
                       detail=f"not judged: no reply from {where} while {res.disturbed}")
    if not res.up:
        return Finding(**base, status=Status.FAIL, detail=f"no reply from {where} ({res.sent} sent)", data=data)
    bad = []
    if res.rtt_ms is not None and res.rtt_ms > rtt_max:
        bad.append(f"RTT {res.rtt_ms:g} ms > {rtt_max:g}")
    if res.loss_pct > loss_max:
        bad.append(f"loss {res.loss_pct:g} % > {loss_max:g}")
    if res.jitter_ms is not None and res.jitter_ms > jitter_max:
        bad.append(f"jitter {res.jitter_ms:g} ms > {jitter_max:g}")
    metrics = f"RTT {res.rtt_ms:g} ms, loss {res.loss_pct:g} %, jitter {res.jitter_ms:g} ms"
    if bad and res.disturbed:
        return Finding(**base, status=Status.ERROR, data=data,
                       detail=f"not judged: {'; '.join(bad)} ({where}) while {res.disturbed}")
    if bad:
        return Finding(**base, status=Status.FAIL, detail=f"{'; '.join(bad)} ({where})", data=data)
    return Finding(**base, status=Status.OK, detail=f"{metrics} ({where})", data=data)


class Reachability:
    name = "reachability"
    platforms: frozenset[str] | None = None
    severity = "high"
    facts: tuple[str, ...] = ()
    probes = True

    def run(self, ctx: SiteContext) -> list[Finding]:
        th = ctx.site.thresholds
        return [judge(ctx.site.id, kind, res, th.rtt_ms, th.loss_pct, th.jitter_ms)
                for kind, res in sorted(ctx.probes.items(), key=lambda kv: ("lan", "internet", "dedicated").index(
                    kv[0]) if kv[0] in ("lan", "internet", "dedicated") else 9)]


register(Reachability())
