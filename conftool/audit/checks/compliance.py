"""compliance: the baseline rules (shipped YAML + the province's own) on each router's parsed running config."""

from __future__ import annotations

import logging

from conftool.audit.context import SiteContext
from conftool.audit.registry import register
from conftool.audit.results import Finding, Status
from conftool.audit.rules import evaluate
from conftool.devices.normalize import normalize

logger = logging.getLogger(__name__)


class Compliance:
    name = "compliance"
    platforms: frozenset[str] | None = frozenset({"frr", "cisco_ios", "huawei_vrp", "mikrotik_routeros"})
    severity = "high"
    facts: tuple[str, ...] = ("running",)
    probes = False

    def run(self, ctx: SiteContext) -> list[Finding]:
        out: list[Finding] = []
        for dev in ctx.routers():
            df = ctx.device_facts(dev)
            running, why = df.get("running") if df is not None else (None, "facts were not gathered")
            if running is None:
                out.append(Finding(site=ctx.site.id, check=self.name, kind="rules", status=Status.SKIPPED,
                                   detail=str(why), device=dev.hostname, severity=self.severity))
                continue
            try:
                cfg = normalize(str(running), dev.platform)
            except ValueError as exc:
                out.append(Finding(site=ctx.site.id, check=self.name, kind="rules", status=Status.ERROR,
                                   detail=str(exc), device=dev.hostname, severity=self.severity))
                continue
            for rule in ctx.rules:
                v = evaluate(rule, dev.platform, cfg, ctx.inv.services)
                data = {"title": rule.title, "baseline": rule.baseline, "source": rule.source}
                if v.status == "fail":
                    data["fix"] = rule.fix_for(dev.platform)
                out.append(Finding(site=ctx.site.id, check=self.name, kind=rule.id, status=Status(v.status),
                                   detail=v.detail, device=dev.hostname, severity=rule.severity, data=data))
        return out


register(Compliance())
