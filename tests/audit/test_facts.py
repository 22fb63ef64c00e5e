"""Fact parsers as case tables: FRR JSON captured from the lab's FRR 8.4, Cisco IOS text through ntc-templates.

The IOS samples are written in the exact format of IOS 15 (no IOS device exists on this machine to capture
from); the FRR files are real captures from the lab's routers after a deploy.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftool.audit.checks.device import interface_findings, route_findings
from conftool.audit.facts import (
    FACTS,
    FactParseError,
    parse_frr_interfaces,
    parse_frr_routes,
    parse_ios_interfaces,
    parse_ios_routes,
)
from conftool.audit.results import Status
from conftool.inventory import load
from conftool.render import Renderer, device_context

DATA = Path(__file__).parent / "data"


def test_ios_interfaces() -> None:
    ifs = parse_ios_interfaces((DATA / "ios-show-ip-interface-brief.txt").read_text())
    got = {n: (i.admin_up, i.oper_up, i.addresses) for n, i in ifs.items()}
    assert got == {
        "GigabitEthernet0/0": (True, True, ["10.250.0.62"]),
        "GigabitEthernet0/1": (True, True, ["100.64.0.94"]),
        "GigabitEthernet0/2": (True, False, ["172.16.0.94"]),
        "GigabitEthernet0/3": (False, False, []),
        "GigabitEthernet0/3.10": (False, False, ["10.11.23.1"]),
    }


def test_ios_routes() -> None:
    routes = {r.prefix: r for r in parse_ios_routes((DATA / "ios-show-ip-route.txt").read_text())}
    assert routes["0.0.0.0/0"].protocol == "static" and routes["0.0.0.0/0"].nexthops[0].ip == "100.64.0.93"
    assert routes["10.11.0.0/16"].usable and routes["10.250.0.0/20"].protocol == "connected"


def test_frr_interfaces_captured() -> None:
    ifs = parse_frr_interfaces((DATA / "frr-show-interface.json").read_text())
    assert {"lan0", "wan0", "tslcd0", "mgmt0"} <= set(ifs)
    assert ifs["wan0"].admin_up and ifs["wan0"].oper_up and "100.64.0.94/30" in ifs["wan0"].addresses
    assert all("." in a for i in ifs.values() for a in i.addresses), "IPv6 link-locals are left out"


def test_frr_routes_captured() -> None:
    routes = parse_frr_routes((DATA / "frr-show-ip-route.json").read_text())
    by = {r.prefix: r for r in routes}
    assert by["0.0.0.0/0"].usable and by["0.0.0.0/0"].nexthops[0].ip == "100.64.0.93"
    guards = [r for r in routes if any(h.blackhole for h in r.nexthops)]
    assert guards and not any(r.usable and r.protocol == "static" and r in guards for r in routes)


@pytest.mark.parametrize(("parser", "text"), [
    (parse_frr_interfaces, "% Unknown command: show interface json"),
    (parse_frr_routes, "[1, 2]"),
])
def test_frr_parse_errors(parser: object, text: str) -> None:
    with pytest.raises(FactParseError):
        parser(text)  # type: ignore[operator]


def test_every_fact_has_a_parser_per_command() -> None:
    for f in FACTS.values():
        assert set(f.commands) == set(f.parsers)


def test_device_check_on_captured_facts(reference_inventory: Path) -> None:
    """The captured router (03148, deployed) passes; the same facts with tslcd0 down fail exactly its parts."""
    inv = load(reference_inventory)
    site = inv.get("03148")
    dev = site.router
    assert dev is not None
    ifs = parse_frr_interfaces((DATA / "frr-show-interface.json").read_text())
    routes = parse_frr_routes((DATA / "frr-show-ip-route.json").read_text())
    ctx = device_context(Renderer(inv).facts, site, dev)
    assert interface_findings(site, dev, ifs).status == Status.OK
    assert [f.status for f in route_findings(site, dev, routes, ctx)] == [Status.OK, Status.OK]
    ifs["tslcd0"].oper_up = False
    f = interface_findings(site, dev, ifs)
    assert f.status == Status.FAIL and f.detail == "tslcd0 (dedicated) down"
    for r in routes:
        for h in r.nexthops:
            if h.interface == "tslcd0":
                h.active = False
    got = {f.kind: f.status for f in route_findings(site, dev, routes, ctx)}
    assert got == {"default-route": Status.OK, "tslcd-routes": Status.FAIL}


def _drift_ctx(reference_inventory: Path, running: str) -> tuple[object, list[object]]:
    from conftool.audit.checks.drift import Drift
    from conftool.audit.context import SiteContext
    from conftool.audit.facts import DeviceFacts

    inv = load(reference_inventory)
    site = inv.get("03148")
    ctx = SiteContext(inv=inv, site=site, options={"renderer": Renderer(inv)},
                      facts={"rt-song-da": DeviceFacts("03148", "rt-song-da", "frr", values={"running": running})})
    return ctx, Drift().run(ctx)  # type: ignore[return-value]


def test_drift_on_captured_running_config(reference_inventory: Path) -> None:
    """The deployed router's real `show running-config` equals its intended config; a hand edit is a diff."""
    running = (DATA / "frr-show-running-config.txt").read_text()
    _, [ok] = _drift_ctx(reference_inventory, running)
    assert ok.status == Status.OK, ok.data.get("diff")  # type: ignore[attr-defined]
    edited = running.replace(" description Internet Viettel INET-11-03148", " description edited by hand")
    _, [bad] = _drift_ctx(reference_inventory, edited)
    assert bad.status == Status.FAIL  # type: ignore[attr-defined]
    assert "-descriptioneditedbyhand" in bad.data["diff"].replace(" ", "")  # type: ignore[attr-defined]
    assert bad.data["missing"] == 1 and bad.data["extra"] == 1  # type: ignore[attr-defined]
