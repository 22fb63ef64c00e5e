"""Turn one inventory device into the plain data a device template reads.

Everything a template needs is computed here, in Python, once per device: templates stay declarative
(no address arithmetic in Jinja) and every platform's template sees the same facts, so a route or an
ACL cannot differ between platforms by accident.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from ipaddress import IPv4Network, collapse_addresses
from typing import Any

from conftool.errors import ConftoolError
from conftool.inventory import Device, Inventory, Link, LinkKind, Role, Site
from conftool.inventory.admin_units import ascii_fold
from conftool.inventory.secrets import ADVICE, is_reference

logger = logging.getLogger(__name__)

MGMT_INTERFACE = "mgmt0"
ACL_NAME = "MGMT-SSH"
GUARD_DISTANCE = 250  # floating blackhole: LAN traffic never falls back to the Internet default route
DEFAULT_SECRET_REFS = {
    "enable_secret": "env:LIENTHONG_ENABLE_SECRET",
    "snmp_auth": "env:LIENTHONG_SNMP_AUTH",
    "snmp_priv": "env:LIENTHONG_SNMP_PRIV",
}
LINK_ORDER = (LinkKind.LAN, LinkKind.INTERNET, LinkKind.DEDICATED)


class RenderError(ConftoolError):
    """A device cannot be rendered: a template is missing or broken, or the inventory lacks a fact it needs."""


@dataclass(frozen=True)
class Province:
    """Facts computed once per inventory and shared by every device's context (cheap per-device work)."""

    lan_summary: list[IPv4Network]
    lans: list[tuple[str, IPv4Network]]  # (site slug, LAN prefix) for every site with a LAN
    services: dict[str, Any]
    province: dict[str, str]


@lru_cache(maxsize=65536)
def _net(n: IPv4Network) -> dict[str, Any]:
    """Every spelling of a prefix a template may need (cached: the same LANs recur in every core config).

    Callers copy it (`{**_net(n), ...}`) before adding keys; the cached dict itself is never changed.
    """
    return {
        "prefix": str(n),
        "network": str(n.network_address),
        "prefixlen": n.prefixlen,
        "netmask": str(n.netmask),
        "wildcard": str(n.hostmask),
    }


def _summary(lans: list[IPv4Network], avoid: list[IPv4Network]) -> list[IPv4Network]:
    """The smallest single supernet holding every LAN, unless it would swallow a non-LAN prefix.

    One summary route per router keeps configs short and the same everywhere; when the LANs are scattered
    (the supernet would cover management or link prefixes) we fall back to the collapsed list.
    """
    if not lans:
        return []
    lo = int(min(n.network_address for n in lans))
    hi = int(max(n.broadcast_address for n in lans))
    sup = IPv4Network((lo, 32 - (lo ^ hi).bit_length()), strict=False)
    if any(sup.overlaps(a) for a in avoid):
        return list(collapse_addresses(lans))
    return [sup]


def province_facts(inv: Inventory) -> Province:
    """Facts every device's template needs about the whole province (summary route, services)."""
    lans: list[tuple[str, IPv4Network]] = []
    avoid: list[IPv4Network] = [inv.services.mgmt_prefix, inv.services.noc_prefix]
    for site in inv.sites:
        for link in site.links:
            if link.kind == LinkKind.LAN:
                lans.append((site.slug, link.prefix))
            else:
                avoid.append(link.prefix)
    sv = inv.services
    services = {
        "noc": _net(sv.noc_prefix),
        "mgmt": _net(sv.mgmt_prefix),
        "soc_syslog": str(sv.soc_syslog),
        "ntp": [str(a) for a in sv.ntp],
        "dns": [str(a) for a in sv.dns],
        "meeting_server": str(sv.meeting_server) if sv.meeting_server else None,
    }
    prov = inv.province
    return Province(
        lan_summary=_summary([n for _, n in lans], avoid),
        lans=lans,
        services=services,
        province={"id": prov.id, "name": prov.name, "slug": prov.slug, "name_ascii": ascii_fold(prov.name)},
    )


@lru_cache(maxsize=65536)
def _ascii(text: str) -> str:
    """Device CLIs and their consoles are not all UTF-8 safe: descriptions carry ASCII-folded names."""
    return ascii_fold(text).replace('"', "'")


def _interface(site: Site, link: Link) -> dict[str, Any]:
    kind = link.kind
    if link.address is None or link.interface is None:
        missing = "address" if link.address is None else "interface"
        raise RenderError(
            f"site {site.id} ({site.slug}): the {kind.value} link has no {missing}; the router template needs "
            f"it — set links[kind={kind.value}].{missing} in the inventory"
        )
    what = {LinkKind.LAN: "LAN", LinkKind.INTERNET: "Internet", LinkKind.DEDICATED: "TSLCD"}[kind]
    desc = _ascii(" ".join(x for x in (what, link.provider, link.circuit_id) if x) if kind != LinkKind.LAN else (
        f"LAN {site.full_name}"))
    return {
        "name": link.interface,
        "kind": kind.value,
        "address": str(link.address),
        "gateway": str(link.gateway) if link.gateway else None,
        "description": desc,
        "vlan": link.vlan,
        "bandwidth_kbps": int(link.bandwidth_mbps * 1000) if link.bandwidth_mbps else None,
        **_net(link.prefix),
    }


def _route(net: IPv4Network, nexthop: str, interface: str, name: str) -> dict[str, Any]:
    return {**_net(net), "nexthop": nexthop, "interface": interface, "name": name}


def device_context(facts: Province, site: Site, device: Device) -> dict[str, Any]:
    """Everything one router template reads; templates never compute addresses themselves."""
    if device.mgmt_address is None:
        raise RenderError(
            f"site {site.id} ({site.slug}), device {device.hostname}: no mgmt_address; every router keeps a "
            "management interface so a deploy never cuts it — set devices[].mgmt_address"
        )
    links = sorted(site.links, key=lambda lk: LINK_ORDER.index(lk.kind))
    interfaces = [_interface(site, lk) for lk in links]
    by_kind = {i["kind"]: i for i in interfaces}
    ded, inet, lan = by_kind.get("dedicated"), by_kind.get("internet"), by_kind.get("lan")
    routes: list[dict[str, Any]] = []
    if ded is not None and ded["gateway"]:
        if device.role == Role.CORE:
            own = IPv4Network(lan["prefix"]) if lan else None
            routes = [_route(n, ded["gateway"], ded["name"], f"LAN {slug}")
                      for slug, n in facts.lans if n != own]
        else:
            routes = [_route(n, ded["gateway"], ded["name"], "LAN summary via TSLCD") for n in facts.lan_summary]
    guards = [{**_net(n), "distance": GUARD_DISTANCE} for n in facts.lan_summary]
    default = None
    if inet is not None and inet["gateway"]:
        default = {"nexthop": inet["gateway"], "interface": inet["name"]}
    mgmt_len = facts.services["mgmt"]["prefixlen"]
    mgmt_net = IPv4Network(f"{device.mgmt_address}/{mgmt_len}", strict=False)
    v = site.vars
    refs = {k: str(v.get(f"{k}_ref", d)) for k, d in DEFAULT_SECRET_REFS.items()}
    for k, ref in refs.items():
        if not is_reference(ref):  # never echo it: it may be the secret itself
            raise RenderError(f"site {site.id} ({site.slug}): vars.{k}_ref is not a credential reference; {ADVICE}")
    return {
        "device": {
            "hostname": device.hostname,
            "platform": device.platform,
            "role": device.role.value,
            "username": device.username or "netops",
        },
        "site": {
            "id": site.id,
            "slug": site.slug,
            "level": site.level.value,
            "name": site.name,
            "name_ascii": _ascii(site.full_name),
        },
        "province": facts.province,
        "interfaces": interfaces,
        "mgmt": {
            "interface": str(v.get("mgmt_interface", MGMT_INTERFACE)),
            "address": str(device.mgmt_address),
            "prefixlen": mgmt_len,
            "netmask": str(mgmt_net.netmask),
            "network": str(mgmt_net.network_address),
        },
        "routes": routes,
        "guard_routes": guards,
        "default_route": default,
        "services": facts.services,
        "acl": {"name": ACL_NAME, "number": 2000, "internet_name": "INTERNET-IN", "internet_number": 3000,
                "nat_name": "NAT-LAN", "nat_number": 2010},
        # never reachable from the Internet line: every LAN (province services included) and management
        "protected": [_net(n) for n in facts.lan_summary] + [facts.services["mgmt"]],
        "snmp": {"user": "lt-snmp", "group": "LT-RO", "view": "LT-VIEW",
                 "auth_ref": refs["snmp_auth"], "priv_ref": refs["snmp_priv"]},
        "secrets": {"enable_ref": refs["enable_secret"]},
        "banner": _ascii(str(v.get("banner", (
            f"{facts.province['name_ascii']} - mang chinh quyen dien tu. Chi can bo duoc phep truy cap. "
            "Authorised access only; activity is logged.")))),
    }

