"""Device-state parsers for Huawei VRP and MikroTik RouterOS: TextFSM, never ad-hoc regular expressions.

Where ntc-templates has a template that fits the command it is used (`display ip routing-table verbose`,
`/interface print terse without-paging`, `/ip address print`). Two use small TextFSM templates of ours (below;
TextFSM takes them as strings, so nothing extra needs packaging): VRP has no ntc template that gives an
interface's state *and* its address (`display ip interface brief`), and ntc's `/ip route print terse` template
rejects RouterOS 7's lower-case protocol flags (`As` = active static), so ours reads the key=value pairs of both
RouterOS 6 and 7 in any order (one lookahead per key).

Every parser returns the platform-neutral `Interface`/`Route` of `conftool.audit.facts`, so the `device` check
judges all platforms the same way.
"""

from __future__ import annotations

import io
import logging
from typing import Any

from conftool.audit.facts import (
    ROS_INTERFACES,
    ROS_ROUTES,
    VRP_INTERFACES,
    VRP_ROUTES,
    FactParseError,
    Interface,
    Nexthop,
    Route,
)

logger = logging.getLogger(__name__)

# `display ip interface brief` (VRP V200R0xx, V300, V800): a legend, counters, then the table; newer releases add
# a VPN column. Physical "*down" = administratively down, "^down" = standby; Protocol "up(s)" = spoofing (NULL0,
# LoopBack), "up(l)" = loopback.
VRP_IP_INTERFACE_BRIEF = r"""Value INTERFACE (\S+)
Value IP_ADDRESS (\d+\.\d+\.\d+\.\d+/\d+|unassigned)
Value PHYSICAL ([*^#]?(?:up|down)(?:\(\w+\))?)
Value PROTOCOL ([*^#]?(?:up|down)(?:\(\w+\))?)
Value VPN (\S+)

Start
  ^\s*Interface\s+IP\s+Address/Mask\s+Physical\s+Protocol(\s+VPN)?\s*$$ -> Table
  ^.*$$

Table
  ^\s*${INTERFACE}\s+${IP_ADDRESS}\s+${PHYSICAL}\s+${PROTOCOL}(\s+${VPN})?\s*$$ -> Record
  ^\s*$$
  ^. -> Error
"""


# `/ip route print terse` (RouterOS 6 and 7): index, flags (v6: in fixed columns, "A S"), then key=value pairs
# whose set and order vary by version and route type; v6 says the egress interface in `gateway-status=…
# reachable via  ether1`, v7 in `immediate-gw=100.64.0.33%ether1`; a v7 blackhole route carries the bare word
# `blackhole`. One TextFSM rule with one lookahead per key (joined here only to keep the lines short).
_ROS_ROUTE_RULE = "".join((
    r"^\s*${INDEX}\s+${FLAGS}\s+",
    r"(?=(?:.*?\s)?dst-address=${DST_ADDRESS}(?:\s|$$))",
    r"(?=.*?\sgateway=${GATEWAY})?",
    r"(?=.*?\simmediate-gw=${IMMEDIATE_GW})?",
    r"(?=.*?\sreachable\s+via\s+${VIA})?",
    r"(?=.*?\sdistance=${DISTANCE})?",
    r"(?=.*?\s${BLACKHOLE}(?:\s|$$))?",
    r".*$$ -> Record",
))
ROS_IP_ROUTE_TERSE = r"""Value INDEX (\d+)
Value FLAGS ((?:[A-Za-z+]\s?)*)
Value DST_ADDRESS (\d+\.\d+\.\d+\.\d+/\d+)
Value GATEWAY ([^\s"]+)
Value IMMEDIATE_GW ([^\s"]+)
Value VIA (\S+)
Value DISTANCE (\d+)
Value BLACKHOLE (blackhole)

Start
  """ + _ROS_ROUTE_RULE + r"""
  ^\s*Flags:.*$$
  ^\s*$$
  ^. -> Error
"""


def _textfsm_ours(template: str, text: str, what: str) -> list[dict[str, Any]]:
    import textfsm  # type: ignore[import-untyped]

    try:
        fsm = textfsm.TextFSM(io.StringIO(template))
        rows = fsm.ParseText(text)
    except textfsm.TextFSMError as exc:
        raise FactParseError(f"`{what}`: output not understood ({exc})") from None
    return [dict(zip((h.lower() for h in fsm.header), row, strict=True)) for row in rows]


def _ntc(platform: str, command: str, text: str) -> list[dict[str, Any]]:
    from ntc_templates.parse import parse_output  # type: ignore[import-untyped]

    try:
        rows = parse_output(platform=platform, command=command, data=text)
    except Exception as exc:  # TextFSM raises its own error types for unparseable text
        raise FactParseError(f"`{command}`: ntc-templates could not parse the output ({exc})") from None
    return [dict(r) for r in rows]


def _not_empty(rows: list[dict[str, Any]], text: str, what: str) -> list[dict[str, Any]]:
    """An error message ("Error: Unrecognized command") parses to zero rows: that is not "no interfaces"."""
    if not rows:
        raise FactParseError(f"`{what}` gave no table: {text.strip()[:120]!r}")
    return rows


# ---- Huawei VRP ------------------------------------------------------------------------------------------
def parse_vrp_interfaces(text: str) -> dict[str, Interface]:
    rows = _not_empty(_textfsm_ours(VRP_IP_INTERFACE_BRIEF, text, VRP_INTERFACES), text, VRP_INTERFACES)
    out: dict[str, Interface] = {}
    for r in rows:
        phy, proto, addr = str(r["physical"]), str(r["protocol"]), str(r["ip_address"])
        out[r["interface"]] = Interface(name=r["interface"], admin_up=not phy.startswith("*"),
                                        oper_up=phy.startswith("up") and proto.startswith("up"),
                                        addresses=[addr] if addr[:1].isdigit() else [])
    return out


_VRP_PROTO = {"Direct": "connected", "Static": "static", "OSPF": "ospf", "O_ASE": "ospf", "ISIS": "isis",
              "EBGP": "bgp", "IBGP": "bgp", "RIP": "rip", "UNR": "unr"}


def parse_vrp_routes(text: str) -> list[Route]:
    """Verbose: one block per route with its State (Active/Inactive) and next hop; ECMP = one block per hop."""
    rows = _not_empty(_ntc("huawei_vrp", VRP_ROUTES, text), text, VRP_ROUTES)
    by_prefix: dict[tuple[str, str], Route] = {}
    for r in rows:
        dest = str(r.get("destination", ""))
        if not dest or ":" in dest:  # IPv6 blocks of `display ipv6 …` are not ours
            continue
        prefix = dest if "/" in dest else f"{dest}/{r.get('prefix_length') or 32}"
        proto = _VRP_PROTO.get(str(r.get("protocol", "")), str(r.get("protocol", "")).lower())
        active = "Active" in str(r.get("state", "")).split()
        iface = str(r.get("interface") or "") or None
        route = by_prefix.setdefault((prefix, proto), Route(prefix=prefix, protocol=proto, selected=active))
        route.selected = route.selected or active
        route.nexthops.append(Nexthop(ip=str(r.get("next_hop") or "") or None, interface=iface, active=active,
                                      blackhole=(iface or "").upper().startswith("NULL")))
    return list(by_prefix.values())


# ---- MikroTik RouterOS --------------------------------------------------------------------------------------
def parse_ros_interfaces(ifaces: str, addresses: str) -> dict[str, Interface]:
    """Flags: X = disabled, R = running. Addresses come from a second command; disabled (X) or invalid (I)
    addresses do not count."""
    rows = _not_empty(_ntc("mikrotik_routeros", ROS_INTERFACES[0], ifaces), ifaces, ROS_INTERFACES[0])
    out: dict[str, Interface] = {}
    for r in rows:
        status = str(r.get("status", ""))
        name = str(r["name"])
        out[name] = Interface(name=name, admin_up=status != "X", oper_up=status == "R")
    for a in _ntc("mikrotik_routeros", ROS_INTERFACES[1], addresses):
        flags = str(a.get("flags", ""))
        iface = out.get(str(a.get("interface", "")))
        if iface is not None and "X" not in flags and "I" not in flags:
            iface.addresses.append(f"{a['ip']}/{a['subnet']}")
    return out


_ROS_PROTO = {"c": "connected", "C": "connected", "s": "static", "S": "static", "o": "ospf", "b": "bgp",
              "r": "rip", "d": "dhcp", "v": "vpn", "m": "modem"}


def parse_ros_routes(text: str) -> list[Route]:
    """Flags (v6 and v7): A = active, X = disabled, B = blackhole; the protocol is a lower- (v7) or upper-case
    (v6) letter. The egress interface is the part after `%` of `immediate-gw` (v7)."""
    rows = _not_empty(_textfsm_ours(ROS_IP_ROUTE_TERSE, text, ROS_ROUTES), text, ROS_ROUTES)
    out: list[Route] = []
    for r in rows:
        flags = str(r["flags"]).replace(" ", "")  # v6 prints flags in fixed columns: "A S" = active static
        proto = next((_ROS_PROTO[f] for f in flags if f in _ROS_PROTO), "")
        active = "A" in flags and "X" not in flags
        gw, imm, via = str(r["gateway"]), str(r["immediate_gw"]), str(r["via"])
        iface = imm.partition("%")[2] or via or (gw if gw and not gw[:1].isdigit() else "")
        ip = gw.partition("%")[0] if gw[:1].isdigit() else None
        out.append(Route(prefix=str(r["dst_address"]), protocol=proto, selected=active,
                         nexthops=[Nexthop(ip=ip, interface=iface or None, active=active,
                                           blackhole="B" in flags or bool(r["blackhole"]))]))
    return out
