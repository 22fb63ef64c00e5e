"""Remediation plans: case tables on REAL FRR output, a real-FRR round trip (captured), and a property test
that applies random plans with a small IOS-style interpreter."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftool.devices.normalize import Config, Node, normalize
from conftool.devices.plan import DIALECTS, plan, plan_text
from tests.render.conftest import data


def test_unchanged_device_gives_an_empty_plan() -> None:
    for role in ("cpe", "edge", "core"):
        p = plan_text(data(f"frr_{role}_running.txt"), data(f"frr_{role}_intended.conf"), "frr")
        assert p.empty and not p and p.commands == []


def test_one_changed_route_gives_exactly_the_needed_commands() -> None:
    intended = data("frr_cpe_intended.conf")
    running = data("frr_cpe_running.txt").replace("ip route 0.0.0.0/0 100.64.0.105", "ip route 0.0.0.0/0 100.64.0.99")
    assert plan_text(running, intended, "frr").commands == [
        "no ip route 0.0.0.0/0 100.64.0.99",
        "ip route 0.0.0.0/0 100.64.0.105",
    ]


def test_frr_reordering_is_not_drift() -> None:
    running = data("frr_core_running.txt")
    lines = running.splitlines()
    routes = [x for x in lines if x.startswith("ip route")]
    shuffled = [x for x in lines if not x.startswith("ip route")] + routes[::-1]
    assert len(routes) > 100
    assert plan_text("\n".join(shuffled), data("frr_core_intended.conf"), "frr").empty


def test_drift_plan_matches_what_fixed_real_frr() -> None:
    """The capture script computed this plan, sent it to a real FRR in the drifted state with vtysh, and
    captured the result: the result equals the intended config after normalisation."""
    intended = data("frr_cpe_intended.conf")
    p = plan_text(data("frr_cpe_drift_running.txt"), intended, "frr")
    assert p.text() == data("frr_cpe_drift_plan.txt")
    assert p.commands == [
        "interface tmp0",
        " no description",  # FRR rejects `no description <text>`: found on the real FRR
        " exit",
        "no ip route 10.11.0.0/16 172.16.0.109",
        "no ip route 10.99.0.0/24 172.16.0.105",
        "access-list MGMT-SSH seq 10 deny any",
        "interface lan0",
        " no ip address 192.168.1.1/24",
        " exit",
        "interface wan0",
        " no shutdown",
        " description Internet Viettel INET-11-03154",
        " exit",
        "ip route 10.11.0.0/16 172.16.0.105",
        "log syslog informational",
    ]
    after = data("frr_cpe_drift_after_plan_running.txt")
    assert normalize(after, "frr") == normalize(intended, "frr")
    assert plan_text(after, intended, "frr").empty


def test_plan_from_an_empty_frr_router() -> None:
    p = plan_text(data("frr_cpe_empty_running.txt"), data("frr_cpe_intended.conf"), "frr")
    assert "ip forwarding" in p.commands  # undoes FRR's `no ip forwarding`
    assert "interface mgmt0" in p.commands and "ip route 0.0.0.0/0 100.64.0.105" in p.commands
    assert not any(c.startswith("hostname") for c in p.commands)  # daemons already carry it


def test_ios_single_value_lines_are_overwritten_not_negated() -> None:
    running = "hostname old\ninterface wan0\n description x\n ip address 100.64.0.2 255.255.255.252\n"
    intended = "hostname rt-a\ninterface wan0\n description Internet\n ip address 100.64.0.6 255.255.255.252\n"
    assert plan_text(running, intended, "cisco_ios").commands == [
        "hostname rt-a",
        "interface wan0",
        " description Internet",
        " ip address 100.64.0.6 255.255.255.252",
        " exit",
    ]


def test_ios_changed_acl_is_rebuilt_in_order() -> None:
    running = "ip access-list standard MGMT-SSH\n permit 10.0.0.0 0.0.0.255\n deny any log\n"
    intended = "ip access-list standard MGMT-SSH\n permit 10.250.0.0 0.0.0.15\n deny any log\n"
    assert plan_text(running, intended, "cisco_ios").commands == [
        "no ip access-list standard MGMT-SSH",
        "ip access-list standard MGMT-SSH",
        " permit 10.250.0.0 0.0.0.15",
        " deny any log",
        " exit",
    ]


def test_removed_interface_config_keeps_the_interface() -> None:
    """`no interface X` fails on FRR for a live kernel interface and would cut IOS ports: negate children."""
    p = plan_text("interface tmp0\n description lab leftover\n", "", "frr")
    assert p.commands == ["interface tmp0", " no description", " exit"]
    assert plan_text("no ipv6 forwarding\n", "", "frr").commands == ["ipv6 forwarding"]


def test_vrp_uses_undo_and_quit() -> None:
    p = plan_text("sysname a\nip route-static 10.0.0.0 255.0.0.0 1.1.1.1\ninterface lan0\n description x\n",
                  "sysname b\ninterface lan0\n description y\n", "huawei_vrp")
    assert p.commands == ["undo ip route-static 10.0.0.0 255.0.0.0 1.1.1.1", "interface lan0", " description y",
                          " quit", "sysname b"]


def test_routeros_plan_removes_by_attributes_and_adds() -> None:
    running = "/ip route\nadd dst-address=0.0.0.0/0 gateway=100.64.0.9\n/system identity\nset name=old\n"
    intended = "/ip route\nadd dst-address=0.0.0.0/0 gateway=100.64.0.105\n/system identity\nset name=rt-a\n"
    assert plan_text(running, intended, "mikrotik_routeros").commands == [
        "/ip route remove [find where dst-address=0.0.0.0/0 gateway=100.64.0.9]",
        "/ip route add dst-address=0.0.0.0/0 gateway=100.64.0.105",
        "/system identity set name=rt-a",
    ]
    assert plan_text(intended, intended, "mikrotik_routeros").empty


def test_platform_mismatch() -> None:
    with pytest.raises(ValueError, match="cannot plan"):
        plan(Config("frr", []), Config("cisco_ios", []))


# ----- property: applying the plan to running yields intended ------------------------------------------


def _apply(running: Config, commands: list[str], platform: str, intended: Config) -> Config:
    """A small IOS-style interpreter: negation removes, single-value keys overwrite, sections nest by indent.

    It fails loudly on a negation of a line that is not there — a plan must never send such a command.
    """
    d = DIALECTS[platform]
    tree = [Node(n.text, [Node(c.text, list(c.children)) for c in n.children]) for n in running.nodes]
    wanted_no = {line.strip() for line in intended.text().splitlines() if line.strip().startswith(d.negate)}
    stack: list[tuple[int, list[Node]]] = [(-1, tree)]
    for raw in commands:
        text = raw.strip()
        depth = len(raw) - len(raw.lstrip(" "))
        if text == d.leave:
            continue
        while stack[-1][0] >= depth:
            stack.pop()
        level = stack[-1][1]
        if text in wanted_no:  # `no X` that is itself config (FRR `no ipv6 forwarding`, IOS `no ip domain lookup`)
            level.append(Node(text))
            continue
        if text.startswith(d.negate):
            target = text[len(d.negate):]
            hit = [n for n in level if n.text == target] or [n for n in level if n.text.startswith(target + " ")]
            assert hit, f"plan negates {target!r} which is not configured"
            level.remove(hit[0])
            continue
        key = next((m.group(0) for p in d.single if (m := p.match(text))), None)
        if key is not None:
            level[:] = [n for n in level if not n.text.startswith(key) or n.text == text]
        node = next((n for n in level if n.text == text), None)
        if node is None and text in {"ip forwarding", "ipv6 forwarding"}:
            level[:] = [n for n in level if n.text != f"no {text}"]
            continue
        if node is None:
            node = Node(text)
            level.append(node)
        stack.append((depth, node.children))
    # a device does not print an interface that has no config left
    tree = [n for n in tree if n.children or not n.text.startswith("interface ")]
    return normalize("\n".join(line for n in tree for line in n.lines()), platform)


_EXTRA = {
    "frr": st.one_of(
        st.tuples(st.integers(0, 255), st.integers(0, 255)).map(lambda t: f"ip route 10.{t[0]}.{t[1]}.0/24 172.16.0.1"),
        st.sampled_from(["no ipv6 forwarding", "log syslog warnings", "access-list MGMT-SSH seq 7 permit 10.0.0.0/8"]),
    ),
    "cisco_ios": st.one_of(
        st.tuples(st.integers(0, 255), st.integers(0, 255)).map(
            lambda t: f"ip route 10.{t[0]}.{t[1]}.0 255.255.255.0 172.16.0.1"),
        st.sampled_from(["logging trap debugging", "ntp server 192.0.2.1", "hostname old-name"]),
    ),
}
_CHILD = {"frr": "ip address 192.168.{}.1/24", "cisco_ios": "ip address 192.168.{}.1 255.255.255.0 secondary"}
_SOURCES = {("frr", "cpe"): "data/frr_cpe_running.txt", ("frr", "edge"): "data/frr_edge_running.txt",
            ("cisco_ios", "cpe"): "golden/cisco_ios/cpe.cfg", ("cisco_ios", "core"): "golden/cisco_ios/core.cfg"}


@settings(max_examples=int(os.environ.get("LIENTHONG_HYPOTHESIS_EXAMPLES", "200")), deadline=None, derandomize=True)
@given(case=st.sampled_from(sorted(_SOURCES)), drop=st.lists(st.integers(0, 200), max_size=8),
       extra=st.data(), child_extra=st.lists(st.tuples(st.integers(0, 3), st.integers(1, 250)), max_size=4))
def test_plan_applied_gives_intended(case: tuple[str, str], drop: list[int], extra: st.DataObject,
                                     child_extra: list[tuple[int, int]]) -> None:
    platform, role = case
    here = Path(__file__).resolve().parent
    intended = normalize((here / f"golden/{platform}/{role}.cfg").read_text(), platform)
    lines = normalize((here / _SOURCES[case]).read_text(), platform).text().splitlines()
    kept: list[str] = []
    parent_dropped = False
    for i, x in enumerate(lines):  # a dropped section takes its children with it, as on a device
        if not x.startswith(" "):
            parent_dropped = i in set(drop)
            if not parent_dropped:
                kept.append(x)
        elif not parent_dropped and i not in set(drop):
            kept.append(x)
    text = "\n".join(kept + extra.draw(st.lists(_EXTRA[platform], max_size=5))) + "\n"
    ifaces = [x for x in kept if x.startswith("interface ")]
    for idx, octet in child_extra:
        if ifaces:
            text += f"{ifaces[idx % len(ifaces)]}\n {_CHILD[platform].format(octet)}\n"
    running = normalize(text, platform)
    p = plan(running, intended)
    result = _apply(running, p.commands, platform, intended)
    assert result == intended, "\n".join(p.commands)
    assert plan(result, intended).empty
    assert all(re.match(r"^( ?)\S", c) for c in p.commands)


def test_first_deploy_plan_built_a_real_frr_router() -> None:
    """Captured: a fresh FRR got the plan from its empty running config and then ran the intended config."""
    intended = data("frr_cpe_intended.conf")
    p = plan_text(data("frr_cpe_empty_running.txt"), intended, "frr")
    assert p.text() == data("frr_cpe_first_plan.txt")
    after = data("frr_cpe_first_after_plan_running.txt")
    assert normalize(after, "frr") == normalize(intended, "frr")
    assert plan_text(after, intended, "frr").empty  # a second deploy sends nothing


def test_whole_config_typed_in_config_mode_is_accepted_by_frr() -> None:
    """Captured: every rendered line (incl. `frr defaults traditional`) sent in config mode, no rejection."""
    assert plan_text(data("frr_cpe_configmode_running.txt"), data("frr_cpe_intended.conf"), "frr").empty


def test_router_as_the_lab_boots_it_converges_on_real_frr() -> None:
    """Captured: FRR started with a lab-like bootstrap (hostname, `log file`, mgmt0, empty `line vty`); the plan
    keeps the management address and the host's log file, and a second plan is empty."""
    intended = data("frr_cpe_intended.conf")
    before = data("frr_cpe_labboot_running.txt")
    p = plan_text(before, intended, "frr")
    assert p.text() == data("frr_cpe_labboot_plan.txt")
    assert not any("10.250.0.68" in c or c.startswith(("no log file", "no interface mgmt0")) for c in p.commands)
    after = data("frr_cpe_labboot_after_plan_running.txt")
    assert "log file /TMP/frr.log informational" in after
    assert plan_text(after, intended, "frr").empty


def test_config_only_interfaces_are_removed_whole() -> None:
    """SVIs, loopbacks and subinterfaces exist only as config: negating their children would leave an empty
    `interface Vlan20` behind (seen on the emulated IOS of tests/devices), so they go with `no interface`."""
    running = "interface Vlan20\n description Phong hop\n ip address 10.11.27.1 255.255.255.0\n" \
              "interface lan0.10\n encapsulation dot1Q 10\ninterface GigabitEthernet0/1\n description old\n"
    assert plan_text(running, "", "cisco_ios").commands == [
        "interface GigabitEthernet0/1", " no description", " exit", "no interface Vlan20", "no interface lan0.10"]
    assert plan_text("interface Vlanif20\n description x\n", "", "huawei_vrp").commands == ["undo interface Vlanif20"]
    assert plan_text("interface lan0.10\n description x\n", "", "frr").commands == [
        "interface lan0.10", " no description", " exit"]
