"""Validation: every mistake an engineer makes gets a Problem naming file, field path and site — all at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftool.errors import InventoryError, Problem
from conftool.inventory import Level, load
from tests.inventory.helpers import DISTRICT_FILE, copy_reference, edit_yaml


def _problems(path: Path) -> list[Problem]:
    with pytest.raises(InventoryError) as exc:
        load(path)
    return exc.value.problems


def test_reference_inventory_is_valid() -> None:
    inv = load("inventory/dien-bien")
    assert inv.counts() == {"province": 1, "district": 10, "commune": 129}
    assert inv.link_counts() == {"lan": 140, "internet": 140, "dedicated": 140}
    kinds = [s.kind for s in inv.by_level(Level.COMMUNE)]
    assert (kinds.count("Xã"), kinds.count("Phường"), kinds.count("Thị trấn")) == (115, 9, 5)
    # one router per site, a meeting-room PC per commune
    assert sum(1 for s in inv if s.router is not None) == 140
    assert sum(1 for _s, d in inv.devices() if d.role == "meeting-endpoint") == 129
    assert all(s.code_2025 for s in inv.by_level(Level.COMMUNE))
    assert len({s.code_2025 for s in inv.by_level(Level.COMMUNE)}) == 45


def test_defaults_inherit_province_level_district(tmp_path: Path) -> None:
    inv_dir = copy_reference(tmp_path)

    def change(d: Any) -> None:
        d["defaults"] = {"links": {"internet": {"provider": "FPT", "bandwidth_mbps": 20}}}
        d["communes"][1]["links"][1]["provider"] = "Viettel"

    edit_yaml(inv_dir / DISTRICT_FILE, change)
    inv = load(inv_dir)
    district = inv.get("096")
    communes = inv.children("096")
    # district file defaults beat province level_defaults (commune internet 50 Mbps)
    assert district.link("internet").provider == "FPT"  # type: ignore[union-attr]
    assert communes[0].link("internet").bandwidth_mbps == 20  # type: ignore[union-attr]
    # the site's own value beats every default
    assert communes[1].link("internet").provider == "Viettel"  # type: ignore[union-attr]
    # other districts are untouched: province default applies
    assert inv.get("097").link("internet").provider == "Viettel"  # type: ignore[union-attr]
    assert inv.get("03124").link("dedicated").bandwidth_mbps == 100  # type: ignore[union-attr]


def test_all_errors_of_a_file_at_once_with_file_path_site(tmp_path: Path) -> None:
    inv_dir = copy_reference(tmp_path)

    def change(d: Any) -> None:
        c0, c1, c2 = d["communes"][0], d["communes"][1], d["communes"][2]
        c0["links"][0]["gateway"] = "10.99.0.1"  # outside its prefix
        c1["devices"][0]["platform"] = "junos-ish"  # unknown platform
        c2["links"][2]["kind"] = "satellite"  # unknown link kind
        d["communes"][3]["devices"][0]["role"] = "toaster"  # unknown role
        d["communes"][4]["devices"][0]["hostname"] = d["district"]["devices"][0]["hostname"]  # duplicate

    edit_yaml(inv_dir / DISTRICT_FILE, change)
    probs = _problems(inv_dir)
    text = "\n".join(str(p) for p in probs)
    assert len(probs) >= 5, text
    assert all(p.file == DISTRICT_FILE for p in probs), text
    gw = next(p for p in probs if "outside its prefix" in p.message)
    assert gw.path == "communes[0].links[0].gateway" and gw.site and gw.site.startswith("03154")
    assert gw.line is not None and gw.line > 1
    assert any("unknown platform 'junos-ish'" in p.message and p.path == "communes[1].devices[0].platform"
               for p in probs), text
    assert any(p.path == "communes[2].links[2].kind" for p in probs), text
    assert any(p.path == "communes[3].devices[0].role" for p in probs), text
    assert any("duplicate hostname" in p.message for p in probs), text


def test_overlapping_prefixes_and_duplicate_addresses(tmp_path: Path) -> None:
    inv_dir = copy_reference(tmp_path)

    def change(d: Any) -> None:
        d["communes"][0]["links"][0]["prefix"] = "10.11.0.0/16"  # swallows every LAN
        d["communes"][0]["links"][0]["address"] = "10.11.200.1"
        d["communes"][1]["devices"][0]["mgmt_address"] = d["district"]["devices"][0]["mgmt_address"]

    edit_yaml(inv_dir / DISTRICT_FILE, change)
    probs = _problems(inv_dir)
    overl = [p for p in probs if "overlaps" in p.message]
    assert overl and all("lan prefix" in p.message for p in overl)
    assert any("already used" in p.message and "mgmt_address" in p.path for p in probs)


def test_missing_parent_and_bad_tree(tmp_path: Path) -> None:
    inv_dir = copy_reference(tmp_path)
    edit_yaml(inv_dir / DISTRICT_FILE, lambda d: d["communes"][0].__setitem__("parent", "999"))
    probs = _problems(inv_dir)
    assert any(p.path == "communes[0].parent" and "does not exist" in p.message for p in probs)


def test_literal_password_refused_without_echo(tmp_path: Path) -> None:
    inv_dir = copy_reference(tmp_path)

    def change(d: Any) -> None:
        d["communes"][0]["devices"][0]["credentials"] = "S3cr3t-Pa55!"
        d["communes"][1]["devices"][0]["password"] = "hunter2-xyz"

    edit_yaml(inv_dir / DISTRICT_FILE, change)
    with pytest.raises(InventoryError) as exc:
        load(inv_dir)
    text = str(exc.value)
    assert "S3cr3t-Pa55!" not in text and "hunter2-xyz" not in text
    assert text.count("secret is written in clear") == 2
    assert "env:VAR" in text and "vault:FILE#key" in text


def test_malformed_yaml_reports_line(tmp_path: Path) -> None:
    inv_dir = copy_reference(tmp_path)
    f = inv_dir / DISTRICT_FILE
    lines = f.read_text(encoding="utf-8").splitlines()
    lines[20] = "  bad: [unclosed"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    probs = _problems(inv_dir)
    assert len(probs) == 1 and probs[0].file == DISTRICT_FILE
    assert "malformed YAML" in probs[0].message and probs[0].line is not None and 20 <= probs[0].line <= 23


@pytest.mark.parametrize("content, expect", [("", "file is empty"), ("# only a comment\n", "no data")])
def test_empty_files(tmp_path: Path, content: str, expect: str) -> None:
    inv_dir = copy_reference(tmp_path)
    (inv_dir / DISTRICT_FILE).write_text(content, encoding="utf-8")
    probs = _problems(inv_dir)
    assert any(expect in p.message and p.file == DISTRICT_FILE for p in probs)


def test_missing_province_file_and_directory(tmp_path: Path) -> None:
    inv_dir = copy_reference(tmp_path)
    (inv_dir / "province.yml").unlink()
    assert "missing" in _problems(inv_dir)[0].message
    assert "does not exist" in _problems(tmp_path / "nowhere")[0].message


def test_unknown_field_named(tmp_path: Path) -> None:
    inv_dir = copy_reference(tmp_path)
    edit_yaml(inv_dir / DISTRICT_FILE, lambda d: d["communes"][0]["links"][0].__setitem__("bandwith", 10))
    probs = _problems(inv_dir)
    assert any(p.path == "communes[0].links[0].bandwith" and "unknown field" in p.message for p in probs)


def test_unquoted_code_gets_a_hint(tmp_path: Path) -> None:
    inv_dir = copy_reference(tmp_path)
    f = inv_dir / DISTRICT_FILE
    f.write_text(f.read_text(encoding="utf-8").replace("id: '03154'", "id: 03154", 1), encoding="utf-8")
    probs = _problems(inv_dir)
    assert any("quote them" in (p.hint or "") and p.path == "communes[0].id" for p in probs)
