"""Fixtures for render/normaliser/plan tests: the reference inventory loaded once, captured FRR output."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftool.inventory import Device, Inventory, Site, load
from conftool.render import Renderer

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"
GOLDEN = Path(__file__).resolve().parent / "golden"
# One site of each role: the province core, a district router, a commune CPE.
ROLE_SITES = {"core": "11", "edge": "096", "cpe": "03154"}


@pytest.fixture(scope="session")
def inv() -> Inventory:
    return load(REPO / "inventory" / "dien-bien")


@pytest.fixture(scope="session")
def renderer(inv: Inventory) -> Renderer:
    return Renderer(inv)


def router_as(inv: Inventory, site_id: str, platform: str) -> tuple[Site, Device]:
    """The site's router as if it ran `platform` (the reference inventory is all FRR, like the lab)."""
    site = inv.get(site_id)
    dev = site.router
    assert dev is not None
    return site, dev.model_copy(update={"platform": platform})


def data(name: str) -> str:
    return (DATA / name).read_text()
