"""Inheritance of defaults province → level → district → site, resolved in exactly one place.

Like Ansible's group_vars or Nornir's groups: a value set closer to the site wins. After this step every
Site is complete, so no other flow ever has to look defaults up again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from conftool.inventory.model import Defaults


def _merge_layers(layers: Sequence[Defaults]) -> dict[str, Any]:
    """Fold layers (outermost first) into plain dicts; later non-None values win field by field."""
    links: dict[str, dict[str, Any]] = {}
    devices: dict[str, dict[str, Any]] = {}
    thresholds: dict[str, Any] = {}
    for layer in layers:
        for kind, ld in layer.links.items():
            links.setdefault(str(kind), {}).update(ld.model_dump(exclude_none=True))
        for role, dd in layer.devices.items():
            devices.setdefault(str(role), {}).update(dd.model_dump(exclude_none=True))
        if layer.thresholds is not None:
            thresholds.update(layer.thresholds.model_dump(exclude_unset=True))
    return {"links": links, "devices": devices, "thresholds": thresholds}


def apply_defaults(site: dict[str, Any], layers: Sequence[Defaults]) -> dict[str, Any]:
    """Return a copy of the raw site mapping with every unset inheritable field filled from ``layers``.

    Only values the site leaves out are filled; anything the site says itself is kept as is, so applying
    the same defaults to an already-resolved site changes nothing (the JSON export round-trips).
    """
    merged = _merge_layers(layers)
    out = dict(site)
    if isinstance(site.get("links"), list):
        new_links = []
        for raw in site["links"]:
            if isinstance(raw, dict):
                d = merged["links"].get(str(raw.get("kind")), {})
                raw = {**{k: v for k, v in d.items() if raw.get(k) is None}, **raw}
            new_links.append(raw)
        out["links"] = new_links
    if isinstance(site.get("devices"), list):
        new_devs = []
        for raw in site["devices"]:
            if isinstance(raw, dict):
                d = merged["devices"].get(str(raw.get("role")), {})
                raw = {**{k: v for k, v in d.items() if raw.get(k) is None}, **raw}
            new_devs.append(raw)
        out["devices"] = new_devs
    if merged["thresholds"]:
        own = site.get("thresholds")
        out["thresholds"] = {**merged["thresholds"], **(own if isinstance(own, dict) else {})}
    return out
