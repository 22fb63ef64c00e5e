"""`inventory init` from the real GSO data: Điện Biên, Lai Châu, a 2025 province; deterministic; safe."""

from __future__ import annotations

import filecmp
from collections import Counter
from pathlib import Path

import pytest

from conftool.errors import AdminUnitError, ConftoolError
from conftool.inventory import Era, Level, load
from conftool.inventory.admin_units import find_province
from conftool.inventory.generate import AddressPlan, build, init, write_dir

REFERENCE = Path(__file__).resolve().parents[2] / "inventory" / "dien-bien"


def test_dien_bien_legacy_counts_and_names(tmp_path: Path) -> None:
    write_dir(init("Điện Biên"), tmp_path / "db")
    inv = load(tmp_path / "db")
    assert inv.counts() == {"province": 1, "district": 10, "commune": 129}
    assert [d.id for d in inv.by_level(Level.DISTRICT)] == [f"{c:03d}" for c in range(94, 104)]
    assert Counter(s.kind for s in inv.by_level(Level.COMMUNE)) == {"Xã": 115, "Phường": 9, "Thị trấn": 5}
    names = {s.full_name for s in inv}
    assert {"Huyện Mường Nhé", "Thành phố Điện Biên Phủ", "Phường Noong Bua"} <= names
    # the 2025 view: 129 physical legacy communes under today's 45
    assert len({s.code_2025 for s in inv.by_level(Level.COMMUNE)}) == 45
    assert inv.get("03124").name_2025 == "Phường Mường Thanh"


def test_reference_inventory_is_what_init_generates(tmp_path: Path) -> None:
    """Committed inventory/dien-bien is reproducible: same input, same plan (no renumbering)."""
    write_dir(init("dien bien"), tmp_path / "again")
    cmp = filecmp.dircmp(REFERENCE, tmp_path / "again")
    assert not cmp.diff_files and not cmp.left_only and not cmp.right_only
    sub = filecmp.dircmp(REFERENCE / "sites", tmp_path / "again" / "sites")
    assert not sub.diff_files and not sub.left_only and not sub.right_only


def test_lai_chau_and_by_code(tmp_path: Path) -> None:
    write_dir(init("12"), tmp_path / "lc")
    inv = load(tmp_path / "lc")
    assert inv.province.name == "Lai Châu"
    assert inv.counts() == {"province": 1, "district": 8, "commune": 106}


def test_2025_province_two_levels(tmp_path: Path) -> None:
    write_dir(init("Điện Biên", Era.Y2025), tmp_path / "db25")
    inv = load(tmp_path / "db25")
    assert inv.era == Era.Y2025
    assert inv.counts() == {"province": 1, "district": 0, "commune": 45}
    assert all(s.parent == "11" for s in inv.by_level(Level.COMMUNE))
    write_dir(init("Hà Nội", Era.Y2025), tmp_path / "hn")
    assert load(tmp_path / "hn").counts()["commune"] == 126


def test_every_province_of_both_maps_builds() -> None:
    from conftool.inventory.admin_units import province_names

    legacy, now = province_names(Era.LEGACY), province_names(Era.Y2025)
    assert (len(legacy), len(now)) == (63, 34)
    total = 0
    for name in now:
        units = find_province(name, Era.Y2025)
        build(units)  # validates addressing for the biggest provinces too
        total += len(units.communes)
    assert total == 3321


def test_unknown_province_did_you_mean() -> None:
    with pytest.raises(AdminUnitError, match="did you mean: Điện Biên"):
        find_province("Dien Bienn")
    with pytest.raises(AdminUnitError, match="known provinces"):
        find_province("Atlantis")


def test_deterministic_and_supernets() -> None:
    a = init("Điện Biên", supernets="lan=10.40.0.0/16,mgmt=10.251.0.0/20")
    b = init("Điện Biên", supernets="lan=10.40.0.0/16,mgmt=10.251.0.0/20")
    assert a == b
    lan = a.sites[5].link("lan")
    assert lan is not None and lan.prefix.subnet_of(AddressPlan.default("11").with_overrides("lan=10.40.0.0/16").lan)
    with pytest.raises(ConftoolError, match="too small"):
        init("Điện Biên", supernets="dedicated=172.16.0.0/26")
    with pytest.raises(ConftoolError, match="KIND=PREFIX"):
        init("Điện Biên", supernets="wan=1.2.3.0/24")
    with pytest.raises(ConftoolError, match="host bits"):
        init("Điện Biên", supernets="lan=10.40.1.0/16")


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "x"
    write_dir(init("Điện Biên"), out)
    (out / "province.yml").write_text((out / "province.yml").read_text() + "# my edit\n")
    with pytest.raises(ConftoolError, match="--force"):
        write_dir(init("Điện Biên"), out)
    assert "# my edit" in (out / "province.yml").read_text()
    write_dir(init("Điện Biên"), out, force=True)
    assert "# my edit" not in (out / "province.yml").read_text()
