"""What a lab is made of, computed from the inventory before anything is built (plan, then apply).

The plan is plain data: it is stored in the lab state so that `status`, `fault`, `exec` and `down` work
from the state alone, without re-reading the inventory.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from conftool.inventory import Inventory, LinkKind
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


@dataclass
class LinkPlan:
    kind: str
    interface: str  # name inside the router namespace
    prefix: str
    address: str | None  # site side
    gateway: str | None  # telco / ISP side (held by the cloud namespace)
    cloud_ns: str | None = None
    cloud_if: str | None = None


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

    @property
    def namespaces(self) -> list[str]:
        clouds = [ISP_NS, TSLCD_NS] + ([self.services.namespace] if self.services else [])
        return clouds + [r.namespace for r in self.routers]

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
                   hosts_records=[(h, a) for h, a in d.get("hosts_records", [])])


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
                          gateway=str(lk.gateway) if lk.gateway else None)
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
    records = sorted((d.hostname, str(d.mgmt_address)) for _, d in inv.devices() if d.mgmt_address is not None)
    return LabPlan(profile=profile, inventory=str(inv.base_dir), province=inv.province.id,
                   noc_address=f"{noc}/{mgmt.prefixlen}", mgmt_prefix=str(mgmt), routers=routers,
                   services=services, hosts_records=records)


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
