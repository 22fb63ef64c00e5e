"""Benchmark: render intended configs for 140 sites (Điện Biên) and 1,000 sites (synthetic), ours vs Nornir.

Same run, same machine, same templates, same per-device data: both sides start from a loaded conftool
`Inventory` and end with a hostname -> config text dict.
- ours: `conftool.render.Renderer` (one Jinja2 Environment, templates compiled once, context per device);
- Nornir 3 + nornir_jinja2 `template_file`, as a Nornir user writes it: build the Nornir inventory (host data
  = the same render context) and `nr.run(template_file, ...)` with the default threaded runner (20 workers).
  nornir_jinja2 makes a new Environment per call unless given `jinja_env`; both variants are timed, and the
  goal (ours within 1.1x) is checked against the faster one.
Medians of 3 runs. Writes bench/results/render.json. Goal (issue 5): within 1.1x of Nornir at 140 and 1,000.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import jinja2  # noqa: E402
from nornir.core import Nornir  # noqa: E402
from nornir.core.inventory import Defaults, Groups, Host, Hosts  # noqa: E402
from nornir.core.inventory import Inventory as NornirInventory  # noqa: E402
from nornir.core.task import Task  # noqa: E402
from nornir.plugins.runners import ThreadedRunner  # noqa: E402
from nornir_jinja2.plugins.tasks import template_file  # noqa: E402

from conftool.inventory import Inventory, load  # noqa: E402
from conftool.inventory.admin_units import ProvinceUnits, find_province  # noqa: E402
from conftool.inventory.generate import AddressPlan, build  # noqa: E402
from conftool.render import Renderer, device_context, province_facts, templates_dir  # noqa: E402

RUNS = 3
TEMPLATES = templates_dir()


def synthetic_1000() -> Inventory:
    """Thanh Hóa's and Nghệ An's legacy units under one province: 1 core, 46 district, 953 commune routers."""
    a, b = find_province("Thanh Hóa"), find_province("Nghệ An")
    districts = a.districts + tuple(replace(d, parent_code=a.province.code) for d in b.districts)
    communes = (a.communes + b.communes)[: 1000 - 1 - len(districts)]
    plan = AddressPlan(lan=IPv4Network("10.64.0.0/12"), dedicated=IPv4Network("172.16.0.0/16"),
                       internet=IPv4Network("100.64.0.0/16"), mgmt=IPv4Network("10.250.0.0/20"))
    return Inventory(build(ProvinceUnits(a.era, a.province, districts, communes), plan))


def ours(inv: Inventory) -> dict[str, str]:
    r = Renderer(inv)
    return {res.device: res.config for res in r.render_many(inv.devices()) if res.config is not None}


def _nornir(inv: Inventory, shared_env: bool) -> dict[str, str]:
    facts = province_facts(inv)
    hosts = Hosts()
    for site, dev in inv.devices():
        if not dev.is_router:
            continue
        ctx = device_context(facts, site, dev)
        ctx["template"] = f"{dev.platform}/{dev.role.value}.j2"
        hosts[dev.hostname] = Host(name=dev.hostname, hostname=str(dev.mgmt_address), platform=dev.platform,
                                   data=ctx)
    nr = Nornir(inventory=NornirInventory(hosts=hosts, groups=Groups(), defaults=Defaults()),
                runner=ThreadedRunner(num_workers=20))
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True) if shared_env else None

    def render(task: Task) -> Any:
        data = dict(task.host.data)
        tpl = data.pop("template")
        if env is not None:
            return task.run(task=template_file, template=tpl, jinja_env=env, **data)
        return task.run(task=template_file, template=tpl, path=str(TEMPLATES), **data)

    result = nr.run(task=render)
    failed = [h for h, r in result.items() if r.failed]
    if failed:
        raise SystemExit(f"nornir failed on {failed[:3]}: {result[failed[0]][1].exception}")
    return {h: r[1].result for h, r in result.items()}


def nornir_default(inv: Inventory) -> dict[str, str]:
    return _nornir(inv, shared_env=False)


def nornir_shared_env(inv: Inventory) -> dict[str, str]:
    return _nornir(inv, shared_env=True)


def timed(fn: Callable[[Inventory], dict[str, str]], inv: Inventory) -> tuple[float, list[float], dict[str, str]]:
    times: list[float] = []
    out: dict[str, str] = {}
    for _ in range(RUNS):
        t = time.perf_counter()
        out = fn(inv)
        times.append(time.perf_counter() - t)
    return statistics.median(times), times, out


def cli_140() -> dict[str, Any]:
    """The whole `conftool render --json` process for Điện Biên: interpreter start, YAML load, render, files."""
    import subprocess
    import tempfile

    exe = str(Path(sys.executable).parent / "conftool")
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(RUNS):
            t = time.perf_counter()
            subprocess.run([exe, "render", "--json", "--out", tmp], check=True, capture_output=True,
                           env={**os.environ, "LIENTHONG_STATE": tmp})
            times.append(time.perf_counter() - t)
    return {"median_s": round(statistics.median(times), 4), "runs_s": [round(x, 4) for x in times]}


def main() -> None:
    logging.getLogger("nornir").setLevel(logging.CRITICAL)
    inventories = {"140": load(REPO / "inventory" / "dien-bien"), "1000": synthetic_1000()}
    results: dict[str, Any] = {}
    for size, inv in inventories.items():
        row: dict[str, Any] = {"routers": sum(1 for _, d in inv.devices() if d.is_router)}
        outputs: dict[str, dict[str, str]] = {}
        # interleave the contenders so none profits from a warmer machine
        for name, fn in (("nornir_jinja2", nornir_default), ("ours", ours),
                         ("nornir_jinja2_shared_env", nornir_shared_env)):
            med, runs, out = timed(fn, inv)
            row[name] = {"median_s": round(med, 4), "runs_s": [round(x, 4) for x in runs]}
            outputs[name] = out
        # nornir_jinja2's own Environment has no keep_trailing_newline: the last newline is the only difference
        same = outputs["ours"] == outputs["nornir_jinja2_shared_env"] and outputs["ours"].keys() == outputs[
            "nornir_jinja2"].keys() and all(v.rstrip("\n") == outputs["nornir_jinja2"][k].rstrip("\n")
                                             for k, v in outputs["ours"].items())
        best_nornir = min(row["nornir_jinja2"]["median_s"], row["nornir_jinja2_shared_env"]["median_s"])
        row["identical_output"] = same
        row["ratio_vs_best_nornir"] = round(row["ours"]["median_s"] / best_nornir, 3)
        row["goal_within_1_1x"] = row["ratio_vs_best_nornir"] <= 1.1
        results[size] = row
        print(f"{size:>5} sites: ours {row['ours']['median_s']:.3f} s, nornir_jinja2 "
              f"{row['nornir_jinja2']['median_s']:.3f} s, nornir+shared env "
              f"{row['nornir_jinja2_shared_env']['median_s']:.3f} s, ratio {row['ratio_vs_best_nornir']}, "
              f"identical output: {same}")
    results["cli_140"] = cli_140()
    print(f"conftool render (140 sites, whole command incl. YAML load and file writes): "
          f"{results['cli_140']['median_s']:.3f} s")
    import nornir

    doc = {
        "bench": "render",
        "runs": RUNS,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "versions": {"jinja2": jinja2.__version__, "nornir": getattr(nornir, "__version__", "3.x")},
        "results": results,
    }
    result_file = REPO / "bench" / "results" / "render.json"
    result_file.write_text(json.dumps(doc, indent=2) + "\n")
    print("wrote", result_file)


if __name__ == "__main__":
    main()
