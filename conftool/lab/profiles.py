"""Which sites a lab profile emulates: `small` for everyday tests, `full` for the demo and benchmarks."""

from __future__ import annotations

import logging

from conftool.inventory import Inventory, Level, Site
from conftool.lab.errors import LabError

logger = logging.getLogger(__name__)

PROFILES = ("small", "full")
SMALL_DISTRICTS = 2
SMALL_COMMUNES_PER_DISTRICT = 2


def _with_router(sites: list[Site]) -> list[Site]:
    return [s for s in sites if s.router is not None]


def profile_sites(inv: Inventory, profile: str) -> list[str]:
    """Site ids a profile emulates, province first, then by id.

    `small` = the province + the first 2 districts (by id) + the first 2 communes (by id) of each;
    `full` = every site that has a router. Only sites with a router can be emulated.
    """
    if profile not in PROFILES:
        raise LabError(f"unknown lab profile {profile!r}: use one of {', '.join(PROFILES)}")
    if profile == "full":
        chosen = _with_router(list(inv.sites))
    else:
        chosen = _with_router(inv.by_level(Level.PROVINCE))
        districts = sorted(_with_router(inv.by_level(Level.DISTRICT)), key=lambda s: s.id)[:SMALL_DISTRICTS]
        for d in districts:
            chosen.append(d)
            communes = sorted(_with_router(inv.children(d.id)), key=lambda s: s.id)
            chosen.extend(communes[:SMALL_COMMUNES_PER_DISTRICT])
        if not districts:  # 2025 era: communes hang directly under the province
            prov = chosen[0].id if chosen else None
            communes = [s for s in _with_router(inv.by_level(Level.COMMUNE)) if s.parent == prov]
            chosen.extend(sorted(communes, key=lambda s: s.id)[:SMALL_DISTRICTS * SMALL_COMMUNES_PER_DISTRICT])
    if not chosen:
        raise LabError("the inventory has no site with a router device: nothing for the lab to emulate")
    order = {Level.PROVINCE: 0, Level.DISTRICT: 1, Level.COMMUNE: 2}
    if profile == "full":
        chosen.sort(key=lambda s: (order[s.level], s.id))
    return [s.id for s in chosen]
