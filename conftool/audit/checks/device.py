"""device: the router's own view — SSH works, each link's interface is up with its address, routes are present.

When SSH fails this is the ONE finding that says so (kind `ssh`, status `error`); drift and compliance then
report `skipped` ("device unreachable"), so a dead device shows up as exactly one failed check.
"""

from __future__ import annotations

import logging
from typing import Any

from conftool.audit.context import SiteContext
from conftool.audit.facts import DeviceFacts, Interface, Route
from conftool.audit.registry import register
from conftool.audit.results import Finding, Status
from conftool.inventory import Device, Site
from conftool.render import Renderer, RenderError, device_context

logger = logging.getLogger(__name__)


def interface_findings(site: Site, device: Device, ifs: dict[str, Interface]) -> Finding:
    """One verdict over the interfaces of every link of the site."""
    bad: list[str] = []
    good: list[str] = []
    for lk in site.links:
        name = lk.interface
        if name is None:
            continue
        i = ifs.get(name) or (ifs.get(f"{name}.{lk.vlan}") if lk.vlan else None)
        if i is None:
            bad.append(f"{name} ({lk.kind.value}) missing")
        elif not i.admin_up:
            bad.append(f"{name} ({lk.kind.value}) administratively down")
        elif not i.oper_up:
            bad.append(f"{name} ({lk.kind.value}) down")
        elif lk.address is not None and not any(a.split("/")[0] == str(lk.address) for a in i.addresses):
            bad.append(f"{name} ({lk.kind.value}) lacks {lk.address}")
        else:
            good.append(name)
    data: dict[str, Any] = {"problems": bad, "up": good}
    if bad:
        return Finding(site=site.id, check=Device_.name, kind="interfaces", status=Status.FAIL,
                       detail="; ".join(bad), device=device.hostname, severity="high", data=data)
    return Finding(site=site.id, check=Device_.name, kind="interfaces", status=Status.OK,
                   detail=f"{', '.join(good)} up" if good else "no link interfaces in the inventory",
                   device=device.hostname, severity="high", data=data)


def _has_route(routes: list[Route], prefix: str, nexthop: str) -> bool:
    return any(r.prefix == prefix and r.usable and any(h.ip == nexthop and h.active for h in r.nexthops)
               for r in routes)


def route_findings(site: Site, device: Device, routes: list[Route], ctx: dict[str, Any]) -> list[Finding]:
    """Default route via the Internet gateway, TSLCD routes via the telco PE — as the intended config has them."""
    out: list[Finding] = []
    base: dict[str, Any] = {"site": site.id, "check": Device_.name, "device": device.hostname, "severity": "high"}
    default = ctx.get("default_route")
    if default is None:
        out.append(Finding(**base, kind="default-route", status=Status.SKIPPED,
                           detail="no Internet link with a gateway: no default route intended"))
    elif _has_route(routes, "0.0.0.0/0", default["nexthop"]):
        out.append(Finding(**base, kind="default-route", status=Status.OK,
                           detail=f"0.0.0.0/0 via {default['nexthop']}"))
    else:
        out.append(Finding(**base, kind="default-route", status=Status.FAIL,
                           detail=f"no usable default route via {default['nexthop']}"))
    wanted = ctx.get("routes") or []
    if not wanted:
        out.append(Finding(**base, kind="tslcd-routes", status=Status.SKIPPED,
                           detail="no dedicated (TSLCD) link with a gateway: no TSLCD routes intended"))
    else:
        missing = [f"{r['prefix']} via {r['nexthop']}" for r in wanted
                   if not _has_route(routes, r["prefix"], r["nexthop"])]
        if missing:
            shown = ", ".join(missing[:5]) + (f" … (+{len(missing) - 5})" if len(missing) > 5 else "")
            out.append(Finding(**base, kind="tslcd-routes", status=Status.FAIL,
                               detail=f"{len(missing)}/{len(wanted)} TSLCD routes missing or inactive: {shown}",
                               data={"missing": missing}))
        else:
            out.append(Finding(**base, kind="tslcd-routes", status=Status.OK,
                               detail=f"{len(wanted)} TSLCD route(s) active"))
    return out


class Device_:
    name = "device"
    platforms: frozenset[str] | None = frozenset({"frr", "cisco_ios", "huawei_vrp", "mikrotik_routeros"})
    severity = "high"
    facts: tuple[str, ...] = ("interfaces", "routes")
    probes = False

    def run(self, ctx: SiteContext) -> list[Finding]:
        out: list[Finding] = []
        for dev in ctx.routers():
            df = ctx.device_facts(dev)
            out += self.device(ctx, dev, df)
        return out

    def device(self, ctx: SiteContext, dev: Device, df: DeviceFacts | None) -> list[Finding]:
        site = ctx.site
        base: dict[str, Any] = {"site": site.id, "check": self.name, "device": dev.hostname, "severity": self.severity}
        if df is None:
            return [Finding(**base, kind="ssh", status=Status.SKIPPED, detail="facts were not gathered")]
        if df.error is not None:
            return [Finding(**base, kind="ssh", status=Status.ERROR, detail=df.error)]
        out = [Finding(**base, kind="ssh", status=Status.OK, detail=f"session ok in {df.elapsed_s:g} s")]
        ifs, why = df.get("interfaces")
        if ifs is None:
            out.append(Finding(**base, kind="interfaces", status=_status(why), detail=str(why)))
        else:
            out.append(interface_findings(site, dev, ifs))
        routes, why = df.get("routes")
        if routes is None:
            out.append(Finding(**base, kind="routes", status=_status(why), detail=str(why)))
            return out
        renderer: Renderer = ctx.options["renderer"]
        try:
            intended = device_context(renderer.facts, site, dev)
        except RenderError as exc:
            out.append(Finding(**base, kind="routes", status=Status.ERROR,
                               detail=f"intended routes unknown: {exc}"))
            return out
        return out + route_findings(site, dev, routes, intended)


def _status(why: str | None) -> Status:
    """A fact the platform has no command/parser for is `skipped`; one that failed to parse is an `error`."""
    return Status.SKIPPED if why and why.startswith("no `") else Status.ERROR


register(Device_())
