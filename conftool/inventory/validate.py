"""Checks across sites that a single pydantic model cannot see: uniqueness, overlaps, the site tree.

Every check appends Problems instead of raising, so an engineer sees all mistakes of a file at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from ipaddress import IPv4Address, IPv4Network

from conftool.errors import Problem
from conftool.inventory.model import Era, InventoryData, Level, Site

# (site, "links[1].prefix") -> (file, full path, line)
Locator = Callable[[Site, str], tuple[str, str, int | None]]


def _overlaps(
    items: Iterable[tuple[IPv4Network, Site, str]], domain: str, loc: Locator
) -> list[Problem]:
    """Sweep sorted networks once: O(n log n) even for a national inventory."""
    problems: list[Problem] = []
    ordered = sorted(items, key=lambda t: (int(t[0].network_address), t[0].prefixlen))
    holder: tuple[IPv4Network, Site, str] | None = None
    for net, site, where in ordered:
        if holder is not None and int(net.network_address) <= int(holder[0].broadcast_address):
            f, p, line = loc(site, where)
            problems.append(Problem(
                f, p,
                f"{domain} prefix {net} overlaps {holder[0]} of site {holder[1].id} ({holder[1].name})",
                site=f"{site.id} {site.name}", line=line,
                hint="give each site its own prefix inside the routing domain",
            ))
            if int(net.broadcast_address) > int(holder[0].broadcast_address):
                holder = (net, site, where)
        else:
            holder = (net, site, where)
    return problems


def validate(data: InventoryData, loc: Locator) -> list[Problem]:
    """All cross-site problems of an inventory whose sites each passed their own model validation."""
    problems: list[Problem] = []

    def add(site: Site, where: str, message: str, hint: str | None = None) -> None:
        f, p, line = loc(site, where)
        problems.append(Problem(f, p, message, site=f"{site.id} {site.name}", hint=hint, line=line))

    by_id: dict[str, Site] = {}
    slugs: dict[str, Site] = {}
    for s in data.sites:
        if s.id in by_id:
            add(s, "id", f"duplicate site id {s.id} (also {by_id[s.id].name})",
                "site ids are GSO codes and must be unique")
        else:
            by_id[s.id] = s
        if s.slug in slugs and slugs[s.slug].id != s.id:
            add(s, "slug", f"duplicate slug {s.slug!r} (also site {slugs[s.slug].id})",
                "slugs become hostnames and selectors; make it unique, e.g. add the district slug")
        else:
            slugs.setdefault(s.slug, s)

    # ----- the site tree -------------------------------------------------------------------
    provinces = [s for s in data.sites if s.level == Level.PROVINCE]
    if len(provinces) != 1:
        problems.append(Problem("province.yml", "site",
                                f"an inventory holds exactly one province site, found {len(provinces)}"))
    for s in data.sites:
        if s.level == Level.PROVINCE:
            if s.parent is not None:
                add(s, "parent", "the province site has no parent", "remove parent")
            continue
        if s.parent is None:
            add(s, "parent", f"{s.level.value} site has no parent", "set parent to its district or province id")
            continue
        par = by_id.get(s.parent)
        if par is None:
            add(s, "parent", f"parent {s.parent} does not exist in the inventory",
                "add the parent site or correct the id")
            continue
        want = {Level.DISTRICT: {Level.PROVINCE},
                Level.COMMUNE: {Level.DISTRICT} if data.province.era == Era.LEGACY else {Level.PROVINCE}}
        if par.level not in want[s.level]:
            add(s, "parent",
                f"a {s.level.value} cannot sit under a {par.level.value} in the {data.province.era.value} map",
                "legacy: province → district → commune; 2025: province → commune")
    if data.province.era == Era.Y2025:
        for s in data.sites:
            if s.level == Level.DISTRICT:
                add(s, "level", "the 2025 map has no districts", "use era: legacy or drop the district level")

    # ----- links, addresses, overlaps ------------------------------------------------------
    domains: dict[str, list[tuple[IPv4Network, Site, str]]] = {"lan": [], "dedicated": [], "internet": []}
    addrs: dict[str, dict[IPv4Address, tuple[Site, str]]] = {"lan": {}, "dedicated": {}, "internet": {},
                                                               "management": {}}

    def claim(domain: str, ip: IPv4Address, site: Site, where: str) -> None:
        seen = addrs[domain].get(ip)
        if seen is not None and not (seen[0].id == site.id and seen[1] == where):
            add(site, where, f"address {ip} is already used by site {seen[0].id} ({seen[1]})",
                f"addresses must be unique in the {domain} domain")
        else:
            addrs[domain][ip] = (site, where)

    hostnames: dict[str, Site] = {}
    for s in data.sites:
        kinds: set[str] = set()
        for i, lk in enumerate(s.links):
            where = f"links[{i}]"
            if lk.kind.value in kinds:
                add(s, f"{where}.kind", f"second {lk.kind.value} link on one site",
                    "a site has at most one link of each kind")
            kinds.add(lk.kind.value)
            domains[lk.kind.value].append((lk.prefix, s, f"{where}.prefix"))
            for fld in ("address", "gateway"):
                ip = getattr(lk, fld)
                if ip is None:
                    continue
                if ip not in lk.prefix:
                    add(s, f"{where}.{fld}", f"{fld} {ip} is outside its prefix {lk.prefix}",
                        f"pick a {fld} inside {lk.prefix} or fix the prefix")
                elif lk.prefix.prefixlen < 31 and ip in (lk.prefix.network_address, lk.prefix.broadcast_address):
                    add(s, f"{where}.{fld}", f"{fld} {ip} is the network or broadcast address of {lk.prefix}")
            if lk.address is not None and lk.gateway is not None and lk.address == lk.gateway:
                add(s, f"{where}.gateway", f"gateway equals the site's own address {lk.address}")
            if lk.address is not None:
                claim(lk.kind.value, lk.address, s, f"{where}.address")
        lan = s.link("lan")
        for j, d in enumerate(s.devices):
            where = f"devices[{j}]"
            if d.hostname in hostnames:
                add(s, f"{where}.hostname", f"duplicate hostname {d.hostname} (also site {hostnames[d.hostname].id})",
                    "hostnames must be unique across the province")
            else:
                hostnames[d.hostname] = s
            if d.mgmt_address is not None:
                if d.mgmt_address not in data.services.mgmt_prefix:
                    add(s, f"{where}.mgmt_address",
                        f"management address {d.mgmt_address} is outside the management prefix "
                        f"{data.services.mgmt_prefix}", "use an address of services.mgmt_prefix")
                claim("management", d.mgmt_address, s, f"{where}.mgmt_address")
            elif d.managed:
                add(s, f"{where}.mgmt_address", f"device {d.hostname} has no management address",
                    "set mgmt_address, or managed: false for a telco-owned device")
            if d.address is not None:
                if lan is not None and d.address not in lan.prefix:
                    add(s, f"{where}.address", f"address {d.address} is outside the site's LAN {lan.prefix}")
                claim("lan", d.address, s, f"{where}.address")
            if d.managed and d.credentials is None:
                add(s, f"{where}.credentials", f"managed device {d.hostname} has no credentials reference",
                    "set credentials (env:, vault: or keyfile:) here or in defaults.devices")
        if data.province.communes_2025 and s.code_2025 and s.code_2025 not in data.province.communes_2025:
            add(s, "code_2025", f"2025 commune code {s.code_2025} is not one of this province's communes",
                "see province.communes_2025 for the list")

    svc = data.services
    if not (svc.noc_prefix.subnet_of(svc.mgmt_prefix) or svc.noc_prefix.overlaps(svc.mgmt_prefix)):
        problems.append(Problem("province.yml", "services.noc_prefix",
                                f"NOC prefix {svc.noc_prefix} is not inside the management prefix {svc.mgmt_prefix}",
                                hint="the NOC manages devices from the management network"))
    for ip, (site, where) in addrs["management"].items():
        if ip in svc.noc_prefix:
            add(site, where, f"management address {ip} is inside the NOC prefix {svc.noc_prefix}",
                "the NOC prefix is reserved for NOC workstations")
    for domain, items in domains.items():
        problems.extend(_overlaps(items, domain, loc))
    return problems
