"""A small generated inventory (2 districts) for tests that mutate many copies."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftool.inventory.admin_units import ProvinceUnits, find_province
from conftool.inventory.generate import build, write_dir


@pytest.fixture(scope="session")
def small_inventory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    full = find_province("Điện Biên")
    districts = full.districts[:2]
    communes = tuple(c for c in full.communes if c.parent_code in {d.code for d in districts})[:5]
    out = tmp_path_factory.mktemp("small") / "inv"
    write_dir(build(ProvinceUnits(full.era, full.province, districts, communes)), out)
    return out
