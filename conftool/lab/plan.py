"""What a lab is made of, computed from the inventory before anything is built (plan, then apply).

The plan is plain data: it is stored in the lab state so that `status`, `fault`, `exec` and `down` work
from the state alone, without re-reading the inventory.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from conftool.inventory import Inventory, LinkKind, Role
from conftool.lab.errors import LabError

logger = logging.getLogger(__name__)

NS_PREFIX = "lt-"
ISP_NS = "lt-isp"
TSLCD_NS = "lt-tslcd"
SVC_NS = "lt-svc"
MGMT_BRIDGE = "lt-mgmt"
MGMT_IF = "mgmt0"
SVC_IF = "svc0"  # the services namespace's leg on the province LAN
SVC_PORT = "lp-svc"  # its peer, a port of the province router's lan0 bridge
DEFAULT_IF = {LinkKind.LAN: "lan0", LinkKind.INTERNET: "wan0", LinkKind.DEDICATED: "tslcd0"}
CLOUD_OF = {LinkKind.INTERNET: ISP_NS, LinkKind.DEDICATED: TSLCD_NS}
CLOUD_IF_PREFIX = {LinkKind.INTERNET: "i-", LinkKind.DEDICATED: "t-"}
IFNAMSIZ = 15
HOST_NS_PREFIX = "lth-"  # host namespaces: lth-<site id>
HOST_ROOT_IF_PREFIX = "lth-"  # their management veth end in the root namespace
HOST_IF, HOST_MGMT_IF = "eth0", "mgmt0"  # inside the host
HOST_PORT_PREFIX = "lp-h"  # the host's port on the router's lan0 bridge: lp-h0, lp-h1 …


@dataclass
class LinkPlan:
    kind: str
    interface: str  # name inside the router namespace
    prefix: str
    address: str | None  # site side
    gateway: str | None  # telco / ISP side (held by the cloud namespace)
    cloud_ns: str | None = None
    cloud_if: str | None = None
    bandwidth_mbps: float | None = None  # the inventory's; the impairments' rate limit


@dataclass
class RouterPlan:
    site: str
    name: str
    level: str
    hostname: str
    instance: str  # FRR -N pathspace
    namespace: str
    mgmt_address: str
    mgmt_prefixlen: int
    root_if: str  # management veth end in the root namespace
    username: str
    links: list[LinkPlan] = field(default_factory=list)

    def link(self, kind: str) -> LinkPlan | None:
        return next((lk for lk in self.links if lk.kind == kind), None)


@dataclass
class HostPlan:
    """A meeting-room PC or a province server: a Linux host on its site's LAN and on the management network."""

    site: str
    hostname: str
    role: str  # meeting-endpoint | server
    namespace: str
    address: str  # on the site LAN, with prefix length
    gateway: str  # the site router's LAN address
    mgmt_address: str
    mgmt_prefixlen: int
    root_if: str  # management veth end in the root namespace
    router_ns: str  # the site router's namespace, whose lan0 bridge the host plugs into
    lan_bridge: str
    username: str


@dataclass
class ServicesPlan:
    namespace: str
    router_site: str
    addresses: list[str]  # host addresses on the province LAN (with prefix length)
    gateway: str
    syslog: str
    ntp: list[str]
    dns: list[str]


@dataclass
class LabPlan:
    profile: str
    inventory: str
    province: str
    noc_address: str  # held by the management bridge in the root namespace
    mgmt_prefix: str
    routers: list[RouterPlan]
    services: ServicesPlan | None
    hosts_records: list[tuple[str, str]] = field(default_factory=list)  # (hostname, mgmt address) for DNS
    hosts: list[HostPlan] = field(default_factory=list)

    @property
    def namespaces(self) -> list[str]:
        clouds = [ISP_NS, TSLCD_NS] + ([self.services.namespace] if self.services else [])
        return clouds + [r.namespace for r in self.routers] + [h.namespace for h in self.hosts]

    def host(self, key: str) -> HostPlan | None:
        """Find a host by hostname, namespace, `pc-<slug>` / `srv-<slug>` or its slug."""
        for h in self.hosts:
            if key in (h.hostname, h.namespace, h.hostname.split("-", 1)[-1]):
                return h
        return None

    def router(self, key: str) -> RouterPlan | None:
        """Find a router by site id, slug-ish hostname, namespace or name."""
        for r in self.routers:
            if key in (r.site, r.hostname, r.namespace, r.hostname.removeprefix("rt-")):
                return r
        return None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LabPlan:
        routers = [RouterPlan(**{**r, "links": [LinkPlan(**lk) for lk in r["links"]]}) for r in d["routers"]]
        svc = ServicesPlan(**d["services"]) if d.get("services") else None
        return cls(profile=d["profile"], inventory=d["inventory"], province=d["province"],
                   noc_address=d["noc_address"], mgmt_prefix=d["mgmt_prefix"], routers=routers, services=svc,
                   hosts_records=[(h, a) for h, a in d.get("hosts_records", [])],
                   hosts=[HostPlan(**h) for h in d.get("hosts", [])])


def _ifname(name: str, site: str) -> str:
    if len(name) > IFNAMSIZ:
        raise LabError(f"site {site}: interface name {name!r} is longer than {IFNAMSIZ} characters")
    return name


def build_plan(inv: Inventory, site_ids: list[str], profile: str) -> LabPlan:
    """Turn the chosen sites into namespaces, interfaces and addresses; refuse what cannot be emulated."""
    svc = inv.services
    mgmt = svc.mgmt_prefix
    noc = next(svc.noc_prefix.hosts(), None)
    if noc is None or noc not in mgmt:
        raise LabError(f"services.noc_prefix {svc.noc_prefix} must hold at least one address inside "
                       f"services.mgmt_prefix {mgmt}: fix province.yml")
    routers: list[RouterPlan] = []
    seen_mgmt: set[IPv4Address] = {noc}
    for sid in site_ids:
        site = inv.get(sid)
        dev = site.router
        if dev is None:
            raise LabError(f"site {sid} ({site.name}) has no router device: the lab cannot emulate it")
        if dev.mgmt_address is None:
            raise LabError(f"site {sid} router {dev.hostname}: devices[].mgmt_address is missing; "
                           "the lab reaches routers only through it")
        if dev.mgmt_address not in mgmt or dev.mgmt_address in svc.noc_prefix:
            raise LabError(f"site {sid} router {dev.hostname}: mgmt_address {dev.mgmt_address} must lie in "
                           f"services.mgmt_prefix {mgmt} and outside services.noc_prefix {svc.noc_prefix}")
        if dev.mgmt_address in seen_mgmt:
            raise LabError(f"site {sid} router {dev.hostname}: mgmt_address {dev.mgmt_address} is used twice")
        seen_mgmt.add(dev.mgmt_address)
        links: list[LinkPlan] = []
        for lk in site.links:
            kind = LinkKind(lk.kind)
            ifname = _ifname(lk.interface or DEFAULT_IF[kind], sid)
            lp = LinkPlan(kind=kind.value, interface=ifname, prefix=str(lk.prefix),
                          address=str(lk.address) if lk.address else None,
                          gateway=str(lk.gateway) if lk.gateway else None, bandwidth_mbps=lk.bandwidth_mbps)
            if kind in CLOUD_OF:
                if lk.address is None or lk.gateway is None:
                    raise LabError(f"site {sid}: the {kind.value} link needs both address and gateway "
                                   "(the gateway is what the lab's cloud namespace holds)")
                lp.cloud_ns = CLOUD_OF[kind]
                lp.cloud_if = _ifname(CLOUD_IF_PREFIX[kind] + sid, sid)
            links.append(lp)
        routers.append(RouterPlan(
            site=sid, name=site.full_name, level=str(site.level.value), hostname=dev.hostname,
            instance=dev.hostname, namespace=_ifname(NS_PREFIX + sid, sid), mgmt_address=str(dev.mgmt_address),
            mgmt_prefixlen=mgmt.prefixlen, root_if=_ifname("ltm-" + sid, sid), username=dev.username or "netops",
            links=links,
        ))
    services = _services_plan(inv, routers)
    hosts = _hosts_plan(inv, routers, seen_mgmt)
    records = sorted((d.hostname, str(d.mgmt_address)) for _, d in inv.devices() if d.mgmt_address is not None)
    return LabPlan(profile=profile, inventory=str(inv.base_dir), province=inv.province.id,
                   noc_address=f"{noc}/{mgmt.prefixlen}", mgmt_prefix=str(mgmt), routers=routers,
                   services=services, hosts_records=records, hosts=hosts)


def _hosts_plan(inv: Inventory, routers: list[RouterPlan], seen_mgmt: set[IPv4Address]) -> list[HostPlan]:
    """One Linux host per meeting-room PC and server of an emulated site, plugged into that router's LAN."""
    mgmt = inv.services.mgmt_prefix
    hosts: list[HostPlan] = []
    for r in routers:
        site = inv.get(r.site)
        lan = r.link(LinkKind.LAN.value)
        for dev in site.devices:
            if dev.role not in (Role.MEETING_ENDPOINT, Role.SERVER):
                continue
            where = f"site {r.site} host {dev.hostname}"
            if lan is None or lan.address is None:
                raise LabError(f"{where}: the site needs a lan link with an address (the host's gateway)")
            net = IPv4Network(lan.prefix)
            if dev.address is None or dev.address not in net:
                raise LabError(f"{where}: devices[].address {dev.address} must lie in the site LAN {net} "
                               "(the lab plugs the host into that LAN)")
            if dev.mgmt_address is None or dev.mgmt_address not in mgmt or dev.mgmt_address in seen_mgmt:
                raise LabError(f"{where}: devices[].mgmt_address {dev.mgmt_address} must be a free address of "
                               f"services.mgmt_prefix {mgmt} (Ansible reaches the host only through it)")
            seen_mgmt.add(dev.mgmt_address)
            n = len([h for h in hosts if h.site == r.site])
            suffix = r.site if n == 0 else f"{r.site}{n}"
            hosts.append(HostPlan(
                site=r.site, hostname=dev.hostname, role=str(dev.role.value),
                namespace=_ifname(HOST_NS_PREFIX + suffix, r.site), address=f"{dev.address}/{net.prefixlen}",
                gateway=lan.address, mgmt_address=str(dev.mgmt_address), mgmt_prefixlen=mgmt.prefixlen,
                root_if=_ifname(HOST_ROOT_IF_PREFIX + suffix, r.site), router_ns=r.namespace,
                lan_bridge=lan.interface, username=dev.username or "netops"))
    return hosts


def _services_plan(inv: Inventory, routers: list[RouterPlan]) -> ServicesPlan | None:
    """The province data centre's services namespace, on the province router's LAN."""
    prov = next((r for r in routers if r.site == inv.province.id), None)
    if prov is None:
        return None
    lan = prov.link(LinkKind.LAN.value)
    if lan is None or lan.address is None:
        raise LabError(f"province site {prov.site}: a lan link with an address is needed for the services "
                       "namespace (SOC syslog, NTP, DNS)")
    net = IPv4Network(lan.prefix)
    svc = inv.services
    wanted = [svc.soc_syslog, *svc.ntp, *svc.dns]
    outside = [str(a) for a in wanted if a not in net]
    if outside:
        raise LabError(f"services {', '.join(outside)} are not on the province LAN {net}: the lab puts the "
                       "SOC syslog collector, NTP and DNS there (fix services in province.yml)")
    addrs = list(dict.fromkeys(f"{a}/{net.prefixlen}" for a in wanted))
    return ServicesPlan(namespace=SVC_NS, router_site=prov.site, addresses=addrs, gateway=lan.address,
                        syslog=str(svc.soc_syslog), ntp=[str(a) for a in svc.ntp], dns=[str(a) for a in svc.dns])


def lab_prefixes(plan: LabPlan) -> list[IPv4Network]:
    """Every prefix the lab uses: the management network and each emulated link."""
    nets = [IPv4Network(plan.mgmt_prefix)]
    nets += [IPv4Network(lk.prefix) for r in plan.routers for lk in r.links]
    return nets


def host_port(plan: LabPlan, h: HostPlan) -> str:
    """The name of a host's port on its router's LAN bridge (unique inside the router namespace)."""
    same = [x for x in plan.hosts if x.router_ns == h.router_ns]
    return f"{HOST_PORT_PREFIX}{same.index(h)}"
