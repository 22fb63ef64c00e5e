"""Property tests: generated inventories round-trip unchanged; mutated ones give InventoryError, never a crash."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftool.errors import InventoryError
from conftool.inventory import Era, load
from conftool.inventory.admin_units import ProvinceUnits, Unit
from conftool.inventory.export import to_json
from conftool.inventory.generate import AddressPlan, build, write_dir
from conftool.inventory.yamlio import dump_yaml

NAME = st.text(alphabet="abcdeghiklmnopqrstuvxyĐđăâêôơưàáảãạèéẻẽẹìíỉĩịòóỏõọùúủũụỳýỷỹỵ ", min_size=2,
               max_size=14).map(str.strip).filter(lambda s: len(s) >= 2)


@st.composite
def province_units(draw: st.DrawFn) -> ProvinceUnits:
    era = draw(st.sampled_from([Era.LEGACY, Era.Y2025]))
    prov = Unit("42", "Tỉnh " + draw(NAME), draw(NAME), "Tỉnh", "p")
    districts: list[Unit] = []
    communes: list[Unit] = []
    code = 1000
    n_d = draw(st.integers(1, 3)) if era == Era.LEGACY else 0
    for di in range(n_d):
        d = Unit(f"{900 + di}", "Huyện x", draw(NAME), "Huyện", f"d{di}", "42")
        districts.append(d)
        for _ in range(draw(st.integers(0, 4))):
            code += 1
            communes.append(Unit(f"{code:05d}", "Xã y", draw(NAME), draw(st.sampled_from(["Xã", "Phường"])),
                                 f"c{code}", d.code))
    if era == Era.Y2025:
        for _ in range(draw(st.integers(1, 6))):
            code += 1
            communes.append(Unit(f"{code:05d}", "Xã y", draw(NAME), "Xã", f"c{code}", "42"))
    return ProvinceUnits(era, prov, tuple(districts), tuple(communes))


def _plan(seed: int) -> AddressPlan:
    return AddressPlan.default("42").with_overrides(f"lan=10.{seed}.0.0/16,mgmt=10.250.{seed * 16 % 256}.0/20")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(units=province_units(), seed=st.integers(0, 15))
def test_valid_inventories_roundtrip(units: ProvinceUnits, seed: int) -> None:
    data = build(units, _plan(seed))
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "inv"
        write_dir(data, d)
        inv = load(d)
        assert inv.data == data
        f = Path(tmp) / "inv.json"
        f.write_text(json.dumps(to_json(inv), ensure_ascii=False))
        again = load(f)
        assert again.data == inv.data


JUNK = st.one_of(st.none(), st.integers(-5, 70000), st.text(max_size=8), st.lists(st.integers(), max_size=2),
                 st.dictionaries(st.text(max_size=4), st.integers(), max_size=2), st.just("10.0.0.0/8"),
                 st.just("300.1.1.1"), st.just("password123"))


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


@settings(max_examples=int(os.environ.get("LT_HYP_EXAMPLES", "60")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_inventories_never_crash(data: st.DataObject, small_inventory: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "inv"
        shutil.copytree(small_inventory, d)
        files = sorted(p for p in d.rglob("*.yml"))
        target = data.draw(st.sampled_from(files))
        tree = yaml.safe_load(target.read_text(encoding="utf-8"))
        paths = _paths(tree)
        for _ in range(data.draw(st.integers(1, 3))):
            path = data.draw(st.sampled_from(paths))
            parent = tree
            for p in path[:-1]:
                parent = parent[p]
            op = data.draw(st.sampled_from(["replace", "delete"]))
            try:
                if op == "delete":
                    del parent[path[-1]]
                else:
                    parent[path[-1]] = data.draw(JUNK)
            except (KeyError, IndexError, TypeError):
                pass
            paths = _paths(tree)
            if not paths:
                break
        target.write_text(dump_yaml(tree) if tree is not None else "", encoding="utf-8")
        try:
            load(d)
        except InventoryError as exc:
            assert exc.problems and all(p.file for p in exc.problems)
