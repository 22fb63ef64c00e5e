"""Selectors (DESIGN §9): id, slug glob, level:, district:ID-or-slug, unions; no match is an error."""

from __future__ import annotations

import pytest

from conftool.errors import SelectorError
from conftool.inventory import Inventory, load


@pytest.fixture(scope="module")
def inv() -> Inventory:
    return load("inventory/dien-bien")


def test_by_id_and_level(inv: Inventory) -> None:
    assert inv.select("03124").site_ids() == ["03124"]
    assert len(inv.select("level:commune")) == 129
    assert inv.select("level:province").site_ids() == ["11"]


def test_district_by_id_or_slug_includes_communes(inv: Inventory) -> None:
    by_id = inv.select("district:096")
    assert by_id.site_ids() == inv.select("district:muong-nhe").site_ids()
    assert by_id.site_ids()[0] == "096" and len(by_id) == 1 + len(inv.children("096"))


def test_slug_glob_and_union(inv: Inventory) -> None:
    muong = inv.select("muong-*")
    assert muong.site_ids() and all(s.slug.startswith("muong-") for s in muong)
    union = inv.select(["03124", "level:district"])
    assert len(union) == 11
    assert inv.select("03124,03127").site_ids() == ["03124", "03127"]


def test_selection_keeps_province_meta_and_order(inv: Inventory) -> None:
    sub = inv.select("district:094")
    assert sub.province == inv.province and sub.services == inv.services
    assert sub.site_ids() == [s for s in inv.site_ids() if s in set(sub.site_ids())]


@pytest.mark.parametrize("sel, words", [
    ("nowhere-*", "matches no site"),
    ("level:hamlet", "unknown level"),
    ("district:atlantis", "no district"),
])
def test_bad_selectors(inv: Inventory, sel: str, words: str) -> None:
    with pytest.raises(SelectorError, match=words):
        inv.select(sel)
