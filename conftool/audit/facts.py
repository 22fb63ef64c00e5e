"""Facts from routers: one Netmiko session per device gathers every command the selected checks need.

A fact is a command per platform plus a parser (pyinfra's idea): checks never talk to devices, they read
parsed facts. FRR answers in JSON (`show … json`); Cisco IOS is parsed with ntc-templates (TextFSM). Parsers are
pure functions of the command's text, so they are tested with case tables of captured output.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from conftool.inventory import Device, Site

logger = logging.getLogger(__name__)



class FactParseError(ValueError):
    """A command's output does not look like what the parser expects (wrong platform, error text)."""


@dataclass
class Interface:
    """An interface as the checks see it on any platform."""

    name: str
    admin_up: bool
    oper_up: bool
    addresses: list[str] = field(default_factory=list)  # "10.11.1.1/24"


@dataclass
class Nexthop:
    ip: str | None
    interface: str | None
    active: bool
    blackhole: bool = False


@dataclass
class Route:
    prefix: str
    protocol: str
    selected: bool
    nexthops: list[Nexthop] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        """Selected and with an active, real next hop (a blackhole guard is not a path)."""
        return self.selected and any(n.active and not n.blackhole for n in self.nexthops)


Parser = Callable[..., Any]  # one text argument per command of the fact on that platform


@dataclass(frozen=True)
class Fact:
    """A command per platform (or several, when the platform splits the fact, e.g. RouterOS interfaces and
    their addresses) and the parser of their outputs."""

    name: str
    commands: dict[str, str | tuple[str, ...]]
    parsers: dict[str, Parser]

    def command(self, platform: str) -> tuple[str, ...] | None:
        cmd = self.commands.get(platform)
        return (cmd,) if isinstance(cmd, str) else cmd

    def parse(self, platform: str, *texts: str) -> Any:
        return self.parsers[platform](*texts)


# ---- FRR (JSON) ------------------------------------------------------------------------------------
def _json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise FactParseError(f"`{what}` did not return JSON: {text.strip()[:120]!r}") from None


def parse_frr_interfaces(text: str) -> dict[str, Interface]:
    doc = _json(text, "show interface json")
    if not isinstance(doc, dict):
        raise FactParseError("`show interface json`: expected an object keyed by interface name")
    out: dict[str, Interface] = {}
    for name, d in doc.items():
        if not isinstance(d, dict):
            continue
        addrs = [str(a.get("address")) for a in d.get("ipAddresses", []) if isinstance(a, dict) and
                 "." in str(a.get("address", ""))]
        out[name] = Interface(name=name, admin_up=d.get("administrativeStatus") == "up",
                              oper_up=d.get("operationalStatus") == "up", addresses=addrs)
    return out


def parse_frr_routes(text: str) -> list[Route]:
    doc = _json(text, "show ip route json")
    if not isinstance(doc, dict):
        raise FactParseError("`show ip route json`: expected an object keyed by prefix")
    out: list[Route] = []
    for prefix, entries in doc.items():
        for e in entries if isinstance(entries, list) else []:
            hops = [Nexthop(ip=h.get("ip"), interface=h.get("interfaceName"), active=bool(h.get("active")),
                            blackhole=bool(h.get("blackhole")) or h.get("unreachable") == "blackhole")
                    for h in e.get("nexthops", []) if isinstance(h, dict)]
            out.append(Route(prefix=str(e.get("prefix", prefix)), protocol=str(e.get("protocol", "")),
                             selected=bool(e.get("selected")), nexthops=hops))
    return out


# ---- Cisco IOS (ntc-templates / TextFSM) -------------------------------------------------------------
def _textfsm(command: str, text: str) -> list[dict[str, Any]]:
    from ntc_templates.parse import parse_output  # type: ignore[import-untyped]

    try:
        rows = parse_output(platform="cisco_ios", command=command, data=text)
    except Exception as exc:  # TextFSM raises its own error types for unparseable text
        raise FactParseError(f"`{command}`: ntc-templates could not parse the output ({exc})") from None
    return [dict(r) for r in rows]


def parse_ios_interfaces(text: str) -> dict[str, Interface]:
    """`show ip interface brief`: status (admin) and protocol (line) per interface."""
    out: dict[str, Interface] = {}
    for r in _textfsm("show ip interface brief", text):
        name = str(r.get("interface", ""))
        addr = str(r.get("ip_address", ""))
        out[name] = Interface(name=name, admin_up="administratively" not in str(r.get("status", "")),
                              oper_up=str(r.get("proto", "")).lower() == "up",
                              addresses=[addr] if addr[:1].isdigit() else [])
    return out


def parse_ios_routes(text: str) -> list[Route]:
    by_prefix: dict[str, Route] = {}
    for r in _textfsm("show ip route", text):
        if not r.get("network"):
            continue
        prefix = f"{r['network']}/{r.get('prefix_length') or 32}"
        proto = {"S": "static", "C": "connected", "L": "local", "O": "ospf", "B": "bgp"}.get(
            str(r.get("protocol", "")), str(r.get("protocol", "")))
        nh_if = str(r.get("nexthop_if") or "") or None
        route = by_prefix.setdefault(prefix, Route(prefix=prefix, protocol=proto, selected=True))
        route.nexthops.append(Nexthop(ip=str(r.get("nexthop_ip") or "") or None, interface=nh_if, active=True,
                                      blackhole=nh_if == "Null0"))
    return list(by_prefix.values())


def parse_text(text: str) -> str:
    return text


# ---- Huawei VRP, MikroTik RouterOS (TextFSM; conftool/audit/vendor.py, imported when used) ----------------
def _vrp_interfaces(text: str) -> Any:
    from conftool.audit.vendor import parse_vrp_interfaces

    return parse_vrp_interfaces(text)


def _vrp_routes(text: str) -> Any:
    from conftool.audit.vendor import parse_vrp_routes

    return parse_vrp_routes(text)


def _ros_interfaces(ifaces: str, addresses: str) -> Any:
    from conftool.audit.vendor import parse_ros_interfaces

    return parse_ros_interfaces(ifaces, addresses)


def _ros_routes(text: str) -> Any:
    from conftool.audit.vendor import parse_ros_routes

    return parse_ros_routes(text)


VRP_INTERFACES = "display ip interface brief"
VRP_ROUTES = "display ip routing-table verbose"
ROS_INTERFACES = ("/interface print terse without-paging", "/ip address print without-paging")
ROS_ROUTES = "/ip route print terse without-paging"


FACTS: dict[str, Fact] = {
    "interfaces": Fact("interfaces", {"frr": "show interface json", "cisco_ios": "show ip interface brief",
                                      "huawei_vrp": VRP_INTERFACES, "mikrotik_routeros": ROS_INTERFACES},
                       {"frr": parse_frr_interfaces, "cisco_ios": parse_ios_interfaces,
                        "huawei_vrp": _vrp_interfaces, "mikrotik_routeros": _ros_interfaces}),
    "routes": Fact("routes", {"frr": "show ip route json", "cisco_ios": "show ip route",
                              "huawei_vrp": VRP_ROUTES, "mikrotik_routeros": ROS_ROUTES},
                   {"frr": parse_frr_routes, "cisco_ios": parse_ios_routes,
                    "huawei_vrp": _vrp_routes, "mikrotik_routeros": _ros_routes}),
    "running": Fact("running", {"frr": "show running-config", "cisco_ios": "show running-config",
                                "huawei_vrp": "display current-configuration", "mikrotik_routeros": "/export"},
                    {p: parse_text for p in ("frr", "cisco_ios", "huawei_vrp", "mikrotik_routeros")}),
}


@dataclass
class DeviceFacts:
    """What one session with one device brought back: parsed facts, or why there are none."""

    site: str
    hostname: str
    platform: str
    error: str | None = None  # the session failed: nothing below is available
    values: dict[str, Any] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)  # fact -> why it is missing (unsupported, parse)
    elapsed_s: float = 0.0

    @property
    def reachable(self) -> bool:
        return self.error is None

    def get(self, name: str) -> tuple[Any, str | None]:
        """(value, None) or (None, reason it is missing)."""
        if self.error is not None:
            return None, "device unreachable"
        if name in self.values:
            return self.values[name], None
        return None, self.problems.get(name, f"fact {name} was not gathered")


def gather(site: Site, device: Device, params: dict[str, Any], names: Iterable[str], timeout: float) -> DeviceFacts:
    """Open one session, run every needed command, parse; failures become data (never an exception).

    `params` are the deploy's Netmiko arguments (`conftool.devices.session.netmiko_params`): one place resolves
    credentials, so audit and deploy log in the same way.
    """
    from netmiko import ConnectHandler
    from netmiko.exceptions import NetmikoAuthenticationException, NetmikoTimeoutException
    from paramiko.ssh_exception import SSHException

    out = DeviceFacts(site=site.id, hostname=device.hostname, platform=device.platform)
    t0 = time.monotonic()
    wanted = [FACTS[n] for n in names]
    todo: list[tuple[Fact, tuple[str, ...]]] = []
    for f in wanted:
        cmds = f.command(device.platform)
        if cmds is None:
            out.problems[f.name] = f"no `{f.name}` command known for platform {device.platform}"
        else:
            todo.append((f, cmds))
    try:
        conn = ConnectHandler(**params)
        if params.get("secret") and not conn.check_enable_mode():
            conn.enable()  # IOS users below privilege 15 land in user EXEC
        # The full prompt, read ONCE per session: Netmiko's default re-reads it before every command (one more
        # round trip each), and its shortcut without that (`auto_find_prompt=False`) waits for the bare hostname,
        # which `show running-config` contains ("hostname rt-…"): the config came back cut short, a false drift.
        prompt = re.escape(conn.find_prompt().strip())
    except NetmikoAuthenticationException:
        out.error = f"SSH authentication failed for {params.get('username')}@{params.get('host')}"
    except (TimeoutError, NetmikoTimeoutException, SSHException, OSError, EOFError) as exc:
        out.error = f"SSH to {params.get('host')}:{params.get('port')} failed: {_short(exc)}"
    except Exception as exc:  # Netmiko raises bare ValueError/ReadTimeout on odd prompts
        out.error = f"SSH session to {params.get('host')} failed: {exc.__class__.__name__}: {_short(exc)}"
    if out.error is not None:
        out.elapsed_s = round(time.monotonic() - t0, 3)
        logger.info("%s: %s", device.hostname, out.error)
        return out
    try:
        for f, cmds in todo:
            texts: list[str] = []
            for one in cmds:
                try:
                    texts.append(str(conn.send_command(one, read_timeout=timeout, expect_string=prompt)))
                except Exception as exc:
                    out.error = f"`{one}` failed: {exc.__class__.__name__}: {_short(exc)}"
                    break
            if out.error is not None:
                break
            try:
                out.values[f.name] = f.parse(device.platform, *texts)
            except FactParseError as exc:
                out.problems[f.name] = str(exc)
    finally:
        try:
            conn.disconnect()
        except Exception:  # a session that died under us cannot be closed cleanly; nothing to do
            logger.debug("%s: disconnect failed", device.hostname)
    out.elapsed_s = round(time.monotonic() - t0, 3)
    return out


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()).split(" Common causes of this problem")[0]
    return (text[:200] + "…") if len(text) > 200 else (text or exc.__class__.__name__)
