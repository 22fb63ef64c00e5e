"""What a check sees of one site: the inventory, the facts its routers gave, its probes, the rules.

The runner fills one `SiteContext` per site (facts and probes gathered concurrently, under the site's
timeout); checks are then pure functions of it, which is what makes them testable with captured output.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from conftool.audit.facts import DeviceFacts
from conftool.audit.hostfacts import HostFacts
from conftool.audit.probes import ProbeResult
from conftool.inventory import Device, Inventory, Site

if TYPE_CHECKING:
    from conftool.audit.rules import Rule

logger = logging.getLogger(__name__)


@dataclass
class SiteContext:
    inv: Inventory  # the whole province (intended configs depend on every LAN)
    site: Site
    facts: dict[str, DeviceFacts] = field(default_factory=dict)  # router hostname -> facts
    probes: dict[str, ProbeResult | str] = field(default_factory=dict)  # link kind -> result or why not probed
    host_facts: dict[str, HostFacts] = field(default_factory=dict)  # host hostname -> facts (the `hosts` check)
    rules: list[Rule] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)  # renderer, lab flag … shared by the run

    def routers(self) -> list[Device]:
        return self.site.routers

    def device_facts(self, device: Device) -> DeviceFacts | None:
        return self.facts.get(device.hostname)
