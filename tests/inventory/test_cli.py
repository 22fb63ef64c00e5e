"""The `conftool inventory` commands as an engineer runs them: real console script, exit codes, JSON shapes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.inventory.helpers import DISTRICT_FILE, copy_reference, edit_yaml

CONFTOOL = str(Path(sys.executable).parent / "conftool")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    e = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run([CONFTOOL, *args], capture_output=True, text=True, env=e, timeout=120)


def test_validate_and_show_reference() -> None:
    r = run("inventory", "validate")
    assert r.returncode == 0, r.stderr
    assert "129" in r.stdout
    r = run("inventory", "show", "--json")
    doc = json.loads(r.stdout)
    assert doc["counts"] == {"province": 1, "district": 10, "commune": 129}
    first = doc["sites"][0]
    assert {"id", "name", "level", "parent"} <= set(first) and first["level"] == "province"
    assert any(s["name"] == "Mường Nhé" and s["level"] == "district" for s in doc["sites"])


def test_show_era_2025_groups_legacy_sites() -> None:
    doc = json.loads(run("inventory", "show", "--era", "2025", "--json").stdout)
    groups = doc["communes_2025"]
    assert len(groups) == 45
    communes = {s["id"] for s in doc["sites"] if s["level"] == "commune"}
    grouped = {sid for g in groups for sid in g["sites"]}
    assert communes <= grouped
    r = run("inventory", "show", "--era", "2025")
    assert "Phường Mường Thanh" in r.stdout


def test_inventory_env_and_option(tmp_path: Path) -> None:
    inv = copy_reference(tmp_path)
    r = run("inventory", "show", "--json", env={"LIENTHONG_INVENTORY": str(inv)})
    assert json.loads(r.stdout)["counts"]["commune"] == 129
    r = run("inventory", "show", "--inventory", str(tmp_path / "none"), "--json")
    assert r.returncode == 2 and "does not exist" in r.stderr


def test_invalid_inventory_exit_2_no_traceback(tmp_path: Path) -> None:
    inv = copy_reference(tmp_path)
    edit_yaml(inv / DISTRICT_FILE, lambda d: d["communes"][0]["links"][0].__setitem__("gateway", "1.2.3.4"))
    r = run("inventory", "validate", str(inv))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert DISTRICT_FILE in r.stderr and "communes[0].links[0].gateway" in r.stderr and "03154" in r.stderr
    r = run("inventory", "validate", str(inv), "--json")
    doc = json.loads(r.stdout)
    assert r.returncode == 2 and doc["problems"][0]["file"] == DISTRICT_FILE


def test_init_and_refusals(tmp_path: Path) -> None:
    out = tmp_path / "lc"
    r = run("inventory", "init", "--province", "lai chau", "--out", str(out), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["counts"] == {"province": 1, "district": 8, "commune": 106}
    r = run("inventory", "init", "--province", "Lai Châu", "--out", str(out))
    assert r.returncode == 2 and "--force" in r.stderr
    r = run("inventory", "init", "--province", "Lai Chau", "--out", str(out), "--force", "--era", "2025")
    assert r.returncode == 0
    r = run("inventory", "init", "--province", "Lai Chau", "--out", str(tmp_path / "y"), "--era", "1999")
    assert r.returncode == 2 and "--era" in r.stderr
    r = run("inventory", "init", "--province", "Lai Chaau", "--out", str(tmp_path / "z"))
    assert r.returncode == 2 and "did you mean" in r.stderr and not (tmp_path / "z").exists()


def test_selectors_on_cli() -> None:
    doc = json.loads(run("inventory", "show", "--site", "district:muong-nhe", "--json").stdout)
    assert doc["counts"]["district"] == 1 and doc["counts"]["commune"] >= 10
    r = run("inventory", "show", "--site", "nowhere-*")
    assert r.returncode == 2 and "matches no site" in r.stderr


def test_export_formats(tmp_path: Path) -> None:
    r = run("inventory", "export", "--format", "json")
    assert json.loads(r.stdout)["province"]["name"] == "Điện Biên"
    f = tmp_path / "hosts.yml"
    assert run("inventory", "export", "--format", "ansible", "--out", str(f)).returncode == 0
    assert "level_commune" in f.read_text(encoding="utf-8")
    r = run("inventory", "export", "--format", "xml")
    assert r.returncode == 2
