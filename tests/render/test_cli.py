"""`conftool render` as an engineer runs it: the real console script, files written, §9 JSON, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftool.inventory import Inventory
from tests.render.conftest import GOLDEN

CONFTOOL = str(Path(sys.executable).parent / "conftool")


def run(*args: str, state: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    e = {**os.environ, "COLUMNS": "200", "LIENTHONG_STATE": str(state), **(env or {})}
    return subprocess.run([CONFTOOL, "render", *args], capture_output=True, text=True, env=e, timeout=120)


def test_render_district_selector_to_out_dir(tmp_path: Path) -> None:
    out = tmp_path / "configs"
    r = run("--site", "district:muong-nhe", "--out", str(out), state=tmp_path)
    assert r.returncode == 0, r.stderr
    files = sorted(p.name for p in out.iterdir())
    assert "rt-muong-nhe.cfg" in files and "rt-sin-thau.cfg" in files
    assert not any(f.startswith("pc-") for f in files)
    assert (out / "rt-sin-thau.cfg").read_text() == (GOLDEN / "frr" / "cpe.cfg").read_text()
    assert "rendered" in r.stdout and "skipped" in r.stdout


def test_render_json_shape_and_default_out(tmp_path: Path) -> None:
    r = run("--site", "03154", "--site", "11", "--json", state=tmp_path)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["summary"]["total"] == 4 and doc["summary"]["rendered"] == 2 and doc["summary"]["skipped"] == 2
    by_dev = {i["device"]: i for i in doc["items"]}
    assert set(by_dev["rt-sin-thau"]) >= {"site", "device", "kind", "status", "detail"}
    assert by_dev["rt-sin-thau"]["status"] == "rendered" and by_dev["rt-sin-thau"]["site"] == "03154"
    assert by_dev["pc-sin-thau"]["status"] == "skipped" and by_dev["pc-sin-thau"]["path"] is None
    path = Path(by_dev["rt-dien-bien"]["path"])
    assert path == tmp_path / "intended" / "rt-dien-bien.cfg" and path.read_text().startswith("! Lien Thong")


def test_render_print(tmp_path: Path) -> None:
    r = run("--site", "sin-thau", "--print", state=tmp_path)
    assert r.returncode == 0 and "ip route 0.0.0.0/0 100.64.0.105" in r.stdout


def test_bad_selector_exits_2(tmp_path: Path) -> None:
    r = run("--site", "no-such-place", state=tmp_path)
    assert r.returncode == 2
    assert "matches no site" in r.stderr and "Traceback" not in r.stderr
    r = run("--site", "level:hamlet", "--json", state=tmp_path)
    assert r.returncode == 2 and "unknown level" in json.loads(r.stdout)["error"]


def test_unmanaged_device_reported(tmp_path: Path, inv: Inventory) -> None:
    data = inv.data.model_copy(deep=True)
    site = next(s for s in data.sites if s.id == "03154")
    site.devices[0] = site.devices[0].model_copy(update={"managed": False})
    path = tmp_path / "inv.json"
    path.write_text(data.model_dump_json())
    r = run("--site", "03154", "--json", "--inventory", str(path), state=tmp_path)
    assert r.returncode == 0, r.stderr
    items = {i["device"]: i for i in json.loads(r.stdout)["items"]}
    assert items["rt-sin-thau"]["status"] == "unmanaged"


def test_broken_template_exits_2_naming_template_and_variable(tmp_path: Path) -> None:
    tdir = tmp_path / "templates"
    (tdir / "frr").mkdir(parents=True)
    (tdir / "frr" / "cpe.j2").write_text("hostname {{ device.hostname }}\n{{ site.no_such_fact }}\n")
    r = run("--site", "03154", state=tmp_path, env={"LIENTHONG_TEMPLATES": str(tdir)})
    assert r.returncode == 2
    assert "frr/cpe.j2:2" in r.stderr and "no_such_fact" in r.stderr and "Traceback" not in r.stderr
