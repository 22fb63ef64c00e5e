"""Normaliser case tables on REAL FRR 8.4 output (captured by tests/render/data/capture_frr.py) and on
IOS/VRP/RouterOS text in those platforms' documented formats."""

from __future__ import annotations

import pytest

from conftool.devices.normalize import natural_key, normalize, normalized_text, unified_diff
from tests.render.conftest import data


@pytest.mark.parametrize("role", ["cpe", "edge", "core"])
def test_frr_running_after_load_equals_intended(role: str) -> None:
    """FRR reorders (routes before interfaces, interfaces sorted), adds exit/!/version lines, hides
    `ip forwarding`, prints `service password-encryption` twice: none of that is drift."""
    intended = data(f"frr_{role}_intended.conf")
    running = data(f"frr_{role}_running.txt")
    assert running != intended
    assert "exit" in running and "frr version" in running
    assert normalize(running, "frr") == normalize(intended, "frr")
    assert unified_diff(intended, running, "frr") == ""


def test_frr_volatile_and_default_lines_are_dropped() -> None:
    text = normalized_text(data("frr_cpe_running.txt"), "frr")
    for gone in ("Building configuration", "Current configuration", "frr version", "frr defaults", "exit",
                 "service integrated-vtysh-config", "!", "end"):
        assert gone not in text.splitlines(), gone
    assert text.count("service password-encryption") == 1


def test_frr_double_hostname_keeps_the_daemons_one() -> None:
    """FRR prints the daemons' hostname and then vtysh's own Unix hostname (FRR issue #20398)."""
    running = data("frr_cpe_running.txt")
    assert running.count("\nhostname ") == 2 and "hostname rt-sin-thau" in running
    lines = normalized_text(running, "frr").splitlines()
    assert [x for x in lines if x.startswith("hostname")] == ["hostname rt-sin-thau"]


def test_frr_empty_router_differs_from_intended() -> None:
    d = unified_diff(data("frr_cpe_intended.conf"), data("frr_cpe_empty_running.txt"), "frr")
    assert "-no ip forwarding" in d and "+interface lan0" in d and "+ip route 0.0.0.0/0 100.64.0.105" in d


def test_frr_drift_shows_exactly_the_changes() -> None:
    d = unified_diff(data("frr_cpe_intended.conf"), data("frr_cpe_drift_running.txt"), "frr")
    changed = sorted(line for line in d.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---")))
    assert changed == sorted([
        "+access-list MGMT-SSH seq 10 deny any",
        "- ip address 192.168.1.1/24",
        "- description old ISP line",
        "+ description Internet Viettel INET-11-03154",
        "-ip route 10.11.0.0/16 172.16.0.109",
        "+ip route 10.11.0.0/16 172.16.0.105",
        "-ip route 10.99.0.0/24 172.16.0.105",
        "- shutdown",
        "-interface tmp0",
        "- description leftover from a test",
        "-log syslog warnings",
        "+log syslog informational",
    ])


def test_natural_order_of_sequence_numbers() -> None:
    assert sorted(["seq 10", "seq 5", "seq 100"], key=natural_key) == ["seq 5", "seq 10", "seq 100"]
    assert sorted(["lan0.10", "lan0.9"], key=natural_key) == ["lan0.9", "lan0.10"]


IOS_RUNNING = """Building configuration...

Current configuration : 1234 bytes
!
! Last configuration change at 04:12:55 UTC Sun Nov 22 2026 by netops
! NVRAM config last updated at 04:13:01 UTC Sun Nov 22 2026 by netops
!
version 15.2
service timestamps log datetime msec localtime
service password-encryption
!
hostname rt-a
!
boot-start-marker
boot-end-marker
!
enable secret 9 $9$abcdefgh$ijklmnopqrstuvwxyz
username netops privilege 15 secret 9 $9$zyxwvu$tsrqponm
!
interface lan0
 description LAN
 ip address 10.11.26.1 255.255.255.0
!
ip route 10.11.0.0 255.255.0.0 172.16.0.105 name LAN-summary-via-TSLCD
ip route 0.0.0.0 0.0.0.0 100.64.0.105 name Internet
!
access-list 10 permit 10.250.0.0 0.0.0.15
access-list 10 deny   any
!
ip access-list standard MGMT-SSH
 permit 10.250.0.0 0.0.0.15
 deny   any log
!
ntp clock-period 17179869
end
"""

IOS_INTENDED = """! intended
hostname rt-a
service password-encryption
service timestamps log datetime msec localtime
interface lan0
 description LAN
 ip address 10.11.26.1 255.255.255.0
 no shutdown
exit
ip route 0.0.0.0 0.0.0.0 100.64.0.105 name Internet
ip route 10.11.0.0 255.255.0.0 172.16.0.105 name LAN-summary-via-TSLCD
access-list 10 permit 10.250.0.0 0.0.0.15
access-list 10 deny   any
ip access-list standard MGMT-SSH
 permit 10.250.0.0 0.0.0.15
 deny   any log
exit
end
"""


def test_ios_volatile_lines_defaults_and_secrets() -> None:
    assert normalize(IOS_RUNNING, "cisco_ios") == normalize(IOS_INTENDED, "cisco_ios")
    text = normalized_text(IOS_RUNNING, "cisco_ios")
    for gone in ("Last configuration change", "NVRAM", "version 15.2", "boot-start-marker", "clock-period",
                 "$9$", "Current configuration"):
        assert gone not in text


def test_ios_acl_order_is_kept() -> None:
    """Reordering ACL entries changes what the ACL does: that must show as drift."""
    swapped = IOS_INTENDED.replace(" permit 10.250.0.0 0.0.0.15\n deny   any log\n",
                                   " deny   any log\n permit 10.250.0.0 0.0.0.15\n")
    assert normalize(swapped, "cisco_ios") != normalize(IOS_INTENDED, "cisco_ios")
    numbered = IOS_INTENDED.replace("access-list 10 permit 10.250.0.0 0.0.0.15\naccess-list 10 deny   any\n",
                                    "access-list 10 deny   any\naccess-list 10 permit 10.250.0.0 0.0.0.15\n")
    assert normalize(numbered, "cisco_ios") != normalize(IOS_INTENDED, "cisco_ios")


def test_vrp_separators_and_return() -> None:
    running = "!Software Version V200R010C00\n#\nsysname rt-a\n#\ninterface lan0\n description LAN\n#\nreturn\n"
    intended = "# header\nsysname rt-a\ninterface lan0\n description LAN\n"
    assert normalize(running, "huawei_vrp") == normalize(intended, "huawei_vrp")


ROS_EXPORT = """# nov/22/2026 04:00:00 by RouterOS 7.14.3
# software id = ABCD-1234
#
# model = RB4011iGS+
# serial number = HD1234567
/ip address
add address=10.11.26.1/24 comment="LAN Xa Sin Thau" interface=lan0
/ip firewall filter
add action=accept chain=input comment=MGMT-SSH dst-port=22 protocol=tcp \\
    src-address-list=MGMT-SSH
add action=drop chain=input comment=MGMT-SSH dst-port=22 protocol=tcp
/system identity
set name=rt-a
"""


def test_routeros_export_header_continuations_attribute_order() -> None:
    intended = """/system identity
set name=rt-a
/ip address
add interface=lan0 address=10.11.26.1/24 comment="LAN Xa Sin Thau"
/ip firewall filter
add action=accept chain=input comment="MGMT-SSH" dst-port=22 protocol=tcp src-address-list=MGMT-SSH
add action=drop chain=input comment=MGMT-SSH dst-port=22 protocol=tcp
"""
    assert normalize(ROS_EXPORT, "mikrotik_routeros") == normalize(intended, "mikrotik_routeros")
    accept, drop = intended.splitlines()[-2:]
    swapped = intended.replace(f"{accept}\n{drop}\n", f"{drop}\n{accept}\n")
    assert swapped != intended
    assert normalize(swapped, "mikrotik_routeros") != normalize(intended, "mikrotik_routeros")


def test_unknown_platform() -> None:
    with pytest.raises(ValueError, match="no normaliser for platform"):
        normalize("x", "junos")


@pytest.mark.parametrize(("role", "site_id"), [("cpe", "03154"), ("edge", "096"), ("core", "11")])
def test_captured_fixtures_match_current_templates(role: str, site_id: str) -> None:
    """The FRR captures were made from these rendered configs; a template change needs a new capture."""
    from conftool.inventory import load
    from conftool.render import render_device
    from tests.render.conftest import REPO

    inv = load(REPO / "inventory" / "dien-bien")
    site = inv.get(site_id)
    assert site.router is not None
    assert render_device(inv, site, site.router) == data(f"frr_{role}_intended.conf"), (
        "templates changed: re-run `python tests/render/data/capture_frr.py` as root")
