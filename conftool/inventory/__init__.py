"""The inventory: one typed model of the province that every flow starts from (DESIGN §2–3)."""

from conftool.inventory.inventory import Inventory, Source
from conftool.inventory.loader import DEFAULT_INVENTORY, default_inventory_path, load
from conftool.inventory.model import (
    PLATFORMS,
    Contact,
    Defaults,
    Device,
    Era,
    InventoryData,
    Level,
    Link,
    LinkKind,
    ProvinceMeta,
    Role,
    Services,
    Site,
    Thresholds,
)
from conftool.inventory.secrets import Secret, resolve

__all__ = [
    "DEFAULT_INVENTORY",
    "PLATFORMS",
    "Contact",
    "Defaults",
    "Device",
    "Era",
    "Inventory",
    "InventoryData",
    "Level",
    "Link",
    "LinkKind",
    "ProvinceMeta",
    "Role",
    "Secret",
    "Services",
    "Site",
    "Source",
    "Thresholds",
    "default_inventory_path",
    "load",
    "resolve",
]
