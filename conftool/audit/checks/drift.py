"""drift: running config vs intended (rendered) config, compared through the deploy's normaliser."""

from __future__ import annotations

import logging
from typing import Any

from conftool.audit.context import SiteContext
from conftool.audit.registry import register
from conftool.audit.results import Finding, Status
from conftool.devices.normalize import unified_diff
from conftool.render import Renderer, RenderError

logger = logging.getLogger(__name__)


def diff_stats(diff: str) -> tuple[int, int]:
    """(lines the device lacks, lines the device has extra) from a running→intended unified diff."""
    lines = [x for x in diff.splitlines() if x[:3] not in ("+++", "---")]
    return sum(x.startswith("+") for x in lines), sum(x.startswith("-") for x in lines)


class Drift:
    name = "drift"
    platforms: frozenset[str] | None = frozenset({"frr", "cisco_ios", "huawei_vrp", "mikrotik_routeros"})
    severity = "medium"
    facts: tuple[str, ...] = ("running",)
    probes = False

    def run(self, ctx: SiteContext) -> list[Finding]:
        renderer: Renderer = ctx.options["renderer"]
        out: list[Finding] = []
        for dev in ctx.routers():
            base: dict[str, Any] = {"site": ctx.site.id, "check": self.name, "kind": "config", "device": dev.hostname,
                    "severity": self.severity}
            skip = renderer.skip_reason(dev)
            if skip is not None:
                out.append(Finding(**base, status=Status.SKIPPED, detail=f"no intended config: {skip[1]}"))
                continue
            df = ctx.device_facts(dev)
            running, why = df.get("running") if df is not None else (None, "facts were not gathered")
            if running is None:
                out.append(Finding(**base, status=Status.SKIPPED, detail=str(why)))
                continue
            try:
                intended = renderer.render_config(ctx.site, dev)
            except RenderError as exc:
                out.append(Finding(**base, status=Status.ERROR, detail=f"cannot render the intended config: {exc}"))
                continue
            diff = unified_diff(intended, str(running), dev.platform, dev.hostname)
            if not diff:
                out.append(Finding(**base, status=Status.OK, detail="running = intended"))
                continue
            missing, extra = diff_stats(diff)
            out.append(Finding(**base, status=Status.FAIL,
                               detail=f"drift: {missing} intended line(s) missing, {extra} unexpected line(s)",
                               data={"diff": diff, "missing": missing, "extra": extra}))
        return out


register(Drift())
