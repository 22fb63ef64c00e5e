"""Exporters: the inventory as JSON (round-trips through `load`) and as an Ansible inventory.

Neither ever resolves a credential reference: exports carry references only.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from conftool.inventory.inventory import Inventory
from conftool.inventory.model import Level

logger = logging.getLogger(__name__)


def to_json(inv: Inventory) -> dict[str, Any]:
    """The full, resolved inventory; `conftool.inventory.load(FILE.json)` reads it back unchanged."""
    return inv.data.model_dump(mode="json")


def group_name(text: str) -> str:
    """Ansible group names: letters, digits and underscores only."""
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


def to_ansible(inv: Inventory) -> dict[str, Any]:
    """A YAML inventory with groups per level, per district, per role and per platform.

    Host vars keep the site id and the credentials *reference*; `conftool play` resolves references into a
    temporary vault-protected vars file at run time (never here).
    """
    groups: dict[str, dict[str, Any]] = {}

    def add(group: str, host: str) -> None:
        groups.setdefault(group, {"hosts": {}})["hosts"][host] = None

    hostvars: dict[str, dict[str, Any]] = {}
    for site, dev in inv.devices():
        hv: dict[str, Any] = {
            "ansible_host": str(dev.mgmt_address) if dev.mgmt_address else None,
            "ansible_user": dev.username,
            "ansible_port": dev.port,
            "lt_site_id": site.id,
            "lt_site_name": site.name,
            "lt_site_level": site.level.value,
            "lt_role": dev.role.value,
            "lt_platform": dev.platform,
            "lt_managed": dev.managed,
            "lt_credentials_ref": dev.credentials,
        }
        if dev.address:
            hv["lt_address"] = str(dev.address)
        if dev.is_router:
            hv["ansible_network_os"] = {"frr": "frr.frr.frr", "cisco_ios": "cisco.ios.ios",
                                        "huawei_vrp": "community.network.ce",
                                        "mikrotik_routeros": "community.routeros.routeros"}.get(dev.platform)
            hv["ansible_connection"] = "ansible.netcommon.network_cli"
        hostvars[dev.hostname] = {k: v for k, v in hv.items() if v is not None}
        add(f"level_{site.level.value}", dev.hostname)
        add(f"role_{group_name(dev.role.value)}", dev.hostname)
        add(f"platform_{dev.platform}", dev.hostname)
        district = inv.district_of(site)
        if district is not None:
            add(f"district_{district.id}", dev.hostname)
        if site.level == Level.COMMUNE and site.code_2025:
            add(f"commune2025_{site.code_2025}", dev.hostname)
    for g in groups.values():
        for h in g["hosts"]:
            g["hosts"][h] = hostvars[h]
    svc = inv.services
    all_vars = {
        "lt_province_id": inv.province.id,
        "lt_province_name": inv.province.name,
        "lt_ntp_servers": [str(x) for x in svc.ntp],
        "lt_dns_servers": [str(x) for x in svc.dns],
        "lt_soc_syslog": str(svc.soc_syslog),
        "lt_noc_prefix": str(svc.noc_prefix),
        "lt_meeting_server": str(svc.meeting_server) if svc.meeting_server else None,
    }
    # Hosts are listed in exactly one group with their vars; other groups list them bare.
    seen: set[str] = set()
    children: dict[str, Any] = {}
    for name in sorted(groups, key=lambda g: (not g.startswith("level_"), g)):
        hosts = {}
        for h, hv in groups[name]["hosts"].items():
            hosts[h] = None if h in seen else hv
            seen.add(h)
        children[name] = {"hosts": hosts}
    return {"all": {"vars": {k: v for k, v in all_vars.items() if v is not None}, "children": children}}
