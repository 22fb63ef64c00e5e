"""Intended device configs: inventory -> `templates/<platform>/<role>.j2` -> text per device (DESIGN §5)."""

from conftool.render.context import RenderError, device_context, province_facts
from conftool.render.coverage import BASELINE_ITEMS, COVERAGE, covers
from conftool.render.engine import (
    TEMPLATE_PLATFORMS,
    TEMPLATE_ROLES,
    Renderer,
    RenderResult,
    render_device,
    render_inventory,
    templates_dir,
)

__all__ = [
    "BASELINE_ITEMS",
    "COVERAGE",
    "TEMPLATE_PLATFORMS",
    "TEMPLATE_ROLES",
    "RenderError",
    "RenderResult",
    "Renderer",
    "covers",
    "device_context",
    "province_facts",
    "render_device",
    "render_inventory",
    "templates_dir",
]
