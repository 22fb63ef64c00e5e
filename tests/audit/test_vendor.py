"""Huawei VRP and MikroTik RouterOS device state through TextFSM, and the `device` check on those facts.

No Huawei or MikroTik device exists on this machine: the samples in data/ are WRITTEN from the vendors' documented
output formats (Huawei "display ip interface brief" / "display ip routing-table verbose" command references for
VRP V200R0xx, MikroTik's RouterOS 6 and 7 manuals for `print terse` and `ip address print`), with the addresses of
the reference inventory's site 03148 so the `device` check can judge them against the intended config.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftool.audit.checks.device import Device_, interface_findings, route_findings
from conftool.audit.context import SiteContext
from conftool.audit.facts import FACTS, DeviceFacts, FactParseError
from conftool.audit.results import Status
from conftool.audit.vendor import parse_ros_interfaces, parse_ros_routes, parse_vrp_interfaces, parse_vrp_routes
from conftool.inventory import Inventory, Site, load
from conftool.render import Renderer, device_context

DATA = Path(__file__).parent / "data"


def read(name: str) -> str:
    return (DATA / name).read_text()


def test_vrp_interfaces_both_layouts() -> None:
    ifs = parse_vrp_interfaces(read("vrp-display-ip-interface-brief.txt"))
    got = {n: (i.admin_up, i.oper_up, i.addresses) for n, i in ifs.items()}
    assert got == {
        "GigabitEthernet0/0/0": (True, True, ["100.64.0.94/30"]),
        "GigabitEthernet0/0/1": (True, True, ["172.16.0.94/30"]),
        "GigabitEthernet0/0/2": (False, False, []),  # *down: administratively down
        "LoopBack0": (True, True, ["10.255.0.6/32"]),  # up(s): spoofing counts as up
        "NULL0": (True, True, []),
        "Vlanif10": (True, True, ["10.11.23.1/24"]),
        "Vlanif20": (True, False, ["10.11.123.1/24"]),  # physical up, protocol down
    }
    vpn = parse_vrp_interfaces(read("vrp-display-ip-interface-brief-vpn.txt"))  # newer VRP: a VPN column
    assert set(vpn) == {"GigabitEthernet0/0/0", "GigabitEthernet0/0/1", "MEth0/0/1"}
    assert vpn["MEth0/0/1"].addresses == ["10.250.0.28/20"]


def test_vrp_routes_verbose_through_ntc_templates() -> None:
    routes = parse_vrp_routes(read("vrp-display-ip-routing-table-verbose.txt"))
    by = {(r.prefix, r.protocol): r for r in routes}
    default = by[("0.0.0.0/0", "static")]
    assert default.usable and [(h.ip, h.interface) for h in default.nexthops] == [
        ("100.64.0.93", "GigabitEthernet0/0/0")]
    summary = by[("10.11.0.0/16", "static")]  # the active route and an inactive NULL0 backup of the same prefix
    assert [(h.ip, h.active, h.blackhole) for h in summary.nexthops] == [("172.16.0.93", True, False),
                                                                         ("0.0.0.0", False, True)]
    assert by[("10.11.23.0/24", "connected")].usable


def test_ros_interfaces_with_addresses() -> None:
    ifs = parse_ros_interfaces(read("ros-interface-print-terse.txt"), read("ros-ip-address-print.txt"))
    got = {n: (i.admin_up, i.oper_up, i.addresses) for n, i in ifs.items()}
    assert got == {
        "ether1": (True, True, ["100.64.0.94/30"]),
        "ether2": (True, True, ["172.16.0.94/30"]),
        "ether3": (True, False, []),  # enabled, not running; its address is disabled (X): not counted
        "ether4": (False, False, []),  # X: disabled
        "ether5": (True, True, []),  # RS: running bridge port
        "bridge-lan": (True, True, ["10.11.23.1/24"]),
    }


@pytest.mark.parametrize("sample", ["ros-ip-route-print-terse.txt", "ros6-ip-route-print-terse.txt"])
def test_ros_routes_v6_and_v7(sample: str) -> None:
    routes = parse_ros_routes(read(sample))
    default = next(r for r in routes if r.prefix == "0.0.0.0/0")
    assert default.usable and default.protocol == "static"
    assert (default.nexthops[0].ip, default.nexthops[0].interface) == ("100.64.0.93", "ether1")
    summary = [r for r in routes if r.prefix == "10.11.0.0/16"]
    assert [r.usable for r in summary] == [True, False]  # the active one, and an inactive backup
    assert next(r for r in routes if r.prefix == "10.11.23.0/24").protocol == "connected"


def test_ros_v7_blackhole_is_not_a_path() -> None:
    hole = next(r for r in parse_ros_routes(read("ros-ip-route-print-terse.txt")) if r.prefix == "10.99.0.0/16")
    assert hole.nexthops[0].blackhole and not hole.usable


@pytest.mark.parametrize(("parser", "text"), [
    (parse_vrp_interfaces, "              ^\nError: Unrecognized command found at '^' position."),
    (parse_vrp_routes, "Error: Wrong parameter found at '^' position."),
    (parse_ros_routes, "bad command name terse (line 1 column 16)"),
])
def test_error_text_is_a_parse_error_not_an_empty_table(parser: object, text: str) -> None:
    with pytest.raises(FactParseError):
        parser(text)  # type: ignore[operator]


def _as_vendor(inv: Inventory, platform: str, names: dict[str, str]) -> Site:
    """Site 03148 with its router on another platform and the vendor's interface names."""
    site = inv.get("03148")
    links = [lk.model_copy(update={"interface": names[lk.kind.value]}) for lk in site.links]
    devices = [d.model_copy(update={"platform": platform}) if d.is_router else d for d in site.devices]
    return site.model_copy(update={"links": links, "devices": devices})


@pytest.mark.parametrize(("platform", "names", "texts"), [
    ("huawei_vrp", {"internet": "GigabitEthernet0/0/0", "dedicated": "GigabitEthernet0/0/1", "lan": "Vlanif10"},
     {"interfaces": ["vrp-display-ip-interface-brief.txt"], "routes": ["vrp-display-ip-routing-table-verbose.txt"]}),
    ("mikrotik_routeros", {"internet": "ether1", "dedicated": "ether2", "lan": "bridge-lan"},
     {"interfaces": ["ros-interface-print-terse.txt", "ros-ip-address-print.txt"],
      "routes": ["ros-ip-route-print-terse.txt"]}),
])
def test_device_check_judges_vendor_facts(reference_inventory: Path, platform: str, names: dict[str, str],
                                          texts: dict[str, list[str]]) -> None:
    """The device check runs the vendor's commands (FACTS) through these parsers and judges them like FRR's."""
    inv = load(reference_inventory)
    site = _as_vendor(inv, platform, names)
    dev = site.router
    assert dev is not None and platform in Device_.platforms  # type: ignore[operator]
    values = {name: FACTS[name].parse(platform, *(read(t) for t in files)) for name, files in texts.items()}
    for name, files in texts.items():
        assert len(FACTS[name].command(platform) or ()) == len(files)
    ctx = SiteContext(inv=inv, site=site, options={"renderer": Renderer(inv)},
                      facts={dev.hostname: DeviceFacts(site.id, dev.hostname, platform, values=values)})
    got = {f.kind: f for f in Device_().run(ctx)}
    assert got["ssh"].status == Status.OK
    assert got["interfaces"].status == Status.OK, got["interfaces"].detail
    assert got["default-route"].status == Status.OK and got["tslcd-routes"].status == Status.OK
    # the same judgement straight from the helpers, with the LAN interface down
    ifs = values["interfaces"]
    ifs[names["lan"]].oper_up = False
    bad = interface_findings(site, dev, ifs)
    assert bad.status == Status.FAIL and f"{names['lan']} (lan) down" in bad.detail
    ctxd = device_context(Renderer(inv).facts, site, dev)
    assert [f.status for f in route_findings(site, dev, values["routes"], ctxd)] == [Status.OK, Status.OK]
