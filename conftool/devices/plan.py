"""Remediation plan: the config commands that take a device from its running config to the intended one.

Works on the normalised trees (`normalize.py`), hierarchically like IOS: a removed line is negated, a changed
section is re-entered and only its changed children are sent, a value with a single slot (hostname,
description, `ip address` on IOS) is simply overwritten. An equal config gives an empty plan, so a deploy of
an unchanged device sends no config command at all — FRR would silently accept a line it already has, so
"nothing to send" has to be decided here, not by the device.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from conftool.devices.normalize import Config, Node, normalize

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Dialect:
    """How a platform negates, leaves sections, and which keys hold a single value."""

    negate: str  # "no " / "undo "
    leave: str  # "exit" / "quit"
    single: tuple[re.Pattern[str], ...]  # a new line with the same key replaces the old one: no negation
    keep_sections: tuple[str, ...] = ("interface ",)  # sections never removed whole: negate their children
    # ...except these, which exist only as config (SVIs, loopbacks, subinterfaces): removed whole
    removable: re.Pattern[str] | None = None
    # lines negated by their key alone: FRR rejects `no description <text>` ("% Unknown command")
    negate_key: tuple[re.Pattern[str], ...] = (re.compile(r"^description\b"),)
    rebuild_sections: tuple[str, ...] = ()  # ordered sections: any change rebuilds the whole section


def _rx(*patterns: str) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p) for p in patterns)


DIALECTS: dict[str, Dialect] = {
    "frr": Dialect("no ", "exit", _rx(r"^hostname ", r"^description ", r"^log syslog", r"^log timestamp precision ",
                                      r"^access-class ")),
    "cisco_ios": Dialect(
        "no ", "exit",
        _rx(r"^hostname ", r"^description ", r"^ip address (?=\S+ \S+$)", r"^bandwidth ", r"^logging trap ",
            r"^logging source-interface ", r"^ntp source ", r"^encapsulation dot1Q ", r"^exec-timeout ",
            r"^transport input ", r"^banner login ", r"^ip domain name ", r"^access-class (?=\S+ in$)",
            r"^service timestamps log "),
        rebuild_sections=("ip access-list ",),
        removable=re.compile(r"^interface (Vlan|Loopback|Tunnel|Port-channel|BDI|Dialer|\S+\.\d+$)"),
    ),
    "huawei_vrp": Dialect(
        "undo ", "quit",
        _rx(r"^sysname ", r"^description ", r"^ip address (?=\S+ \S+$)", r"^header login ", r"^authentication-mode ",
            r"^protocol inbound ", r"^dot1q termination vid ", r"^snmp-agent sys-info version "),
        keep_sections=("interface ", "aaa", "user-interface "),
        removable=re.compile(r"^interface (Vlanif|LoopBack|Tunnel|Eth-Trunk|Dialer|\S+\.\d+$)"),
    ),
}


@dataclass
class Plan:
    """Commands to send in config mode, in order; empty means the device is already as intended."""

    platform: str
    commands: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.commands

    def __bool__(self) -> bool:
        return bool(self.commands)

    def text(self) -> str:
        return "".join(c + "\n" for c in self.commands)


def _key_of(text: str, d: Dialect) -> str | None:
    for p in d.single:
        m = p.match(text)
        if m:
            return m.group(0)
    return None


def _negate(node: Node, d: Dialect, depth: int) -> list[str]:
    pad = " " * depth
    removable = d.removable is not None and d.removable.match(node.text) is not None
    if node.children and not removable and any(node.text.startswith(k) for k in d.keep_sections):
        inner = [c for ch in node.children for c in _negate(ch, d, depth + 1)]
        return [pad + node.text, *inner, pad + " " + d.leave] if inner else []
    if node.text.startswith(d.negate):
        return [pad + node.text[len(d.negate):]]
    for p in d.negate_key:
        m = p.match(node.text)
        if m:
            return [pad + d.negate + m.group(0)]
    return [pad + d.negate + node.text]


def _diff(running: list[Node], intended: list[Node], d: Dialect, depth: int) -> list[str]:
    pad = " " * depth
    run = {n.text: n for n in running}
    want = {n.text: n for n in intended}
    new_keys = {k for k in (_key_of(n.text, d) for n in intended if n.text not in run) if k}
    cmds: list[str] = []
    for n in running:
        if n.text in want:
            continue
        key = _key_of(n.text, d)
        if key is not None and key in new_keys:
            continue  # overwritten by the new value below
        cmds += _negate(n, d, depth)
    for n in intended:
        r = run.get(n.text)
        if r is None:
            cmds += n.lines(depth)
            if n.children:
                cmds.append(pad + " " + d.leave)
            continue
        if r.same(n):
            continue
        if any(n.text.startswith(s) for s in d.rebuild_sections):
            cmds += [pad + d.negate + n.text, *n.lines(depth), pad + " " + d.leave]
            continue
        inner = _diff(r.children, n.children, d, depth + 1)
        if inner:
            cmds += [pad + n.text, *inner, pad + " " + d.leave]
    return cmds


_ROS_FIND = re.compile(r"^(add|set) ")


def _routeros(running: list[Node], intended: list[Node]) -> list[str]:
    """RouterOS: per `/path`, remove items that went away (by all their attributes), add new ones, re-`set`."""
    run = {n.text: n for n in running}
    cmds: list[str] = []
    for sec in intended:
        have = {c.text for c in run[sec.text].children} if sec.text in run else set()
        want = {c.text for c in sec.children}
        for c in run[sec.text].children if sec.text in run else []:
            if c.text not in want and c.text.startswith("add "):
                cmds.append(f"{sec.text} remove [find where {c.text[4:]}]")
        cmds += [f"{sec.text} {c.text}" for c in sec.children if c.text not in have]
    wanted_paths = {s.text for s in intended}
    for sec in running:
        if sec.text not in wanted_paths:
            cmds += [f"{sec.text} remove [find where {c.text[4:]}]" for c in sec.children if c.text.startswith("add ")]
    return cmds


def plan(running: Config, intended: Config) -> Plan:
    """The commands that turn `running` into `intended` (both normalised for the same platform)."""
    if running.platform != intended.platform:
        raise ValueError(f"cannot plan from a {running.platform} config to a {intended.platform} config")
    p = intended.platform
    if p == "mikrotik_routeros":
        return Plan(p, _routeros(running.nodes, intended.nodes))
    if p not in DIALECTS:
        raise ValueError(f"no remediation dialect for platform {p!r}")
    return Plan(p, _diff(running.nodes, intended.nodes, DIALECTS[p], 0))


def plan_text(running: str, intended: str, platform: str) -> Plan:
    """Normalise both texts and plan: the entry point deploy and `conftool diff` use."""
    return plan(normalize(running, platform), normalize(intended, platform))


__all__ = ["DIALECTS", "Dialect", "Plan", "plan", "plan_text"]
