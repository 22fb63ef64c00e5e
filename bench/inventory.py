"""Benchmark: load + validate the Điện Biên inventory and a synthetic national one (3,321 communes, 2025 map).

Goals (issue 2): Điện Biên ≤ 0.3 s, national ≤ 5 s on the 2-core reference machine. Medians of 5 runs, each in
a fresh process state (caches of the loader are per call anyway). Writes bench/results/inventory.json.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import tempfile
import time
from ipaddress import IPv4Network
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from conftool.inventory import Era, load  # noqa: E402
from conftool.inventory.admin_units import ProvinceUnits, Unit, find_province, province_names  # noqa: E402
from conftool.inventory.generate import AddressPlan, build, write_dir  # noqa: E402

RUNS = 5


def national_units() -> ProvinceUnits:
    """Every 2025 commune of Viet Nam under one synthetic 'province', to size the loader for a national run."""
    communes: list[Unit] = []
    for name in province_names(Era.Y2025):
        units = find_province(name, Era.Y2025)
        communes += [Unit(c.code, c.name, c.short, c.kind, c.key, "99") for c in units.communes]
    return ProvinceUnits(Era.Y2025, Unit("99", "Quốc gia", "Quốc gia", "Tỉnh", "quocgia"), (), tuple(communes))


def time_load(path: Path) -> tuple[float, int]:
    times = []
    n = 0
    for _ in range(RUNS):
        t = time.perf_counter()
        inv = load(path)
        times.append(time.perf_counter() - t)
        n = len(inv)
    return statistics.median(times), n


def main() -> None:
    results = {}
    med, n = time_load(REPO / "inventory" / "dien-bien")
    results["dien_bien"] = {"sites": n, "median_s": round(med, 4), "goal_s": 0.3}
    print(f"Điện Biên: {n} sites, load+validate median {med:.3f} s (goal ≤ 0.3 s)")
    plan = AddressPlan(lan=IPv4Network("10.0.0.0/8"), dedicated=IPv4Network("172.16.0.0/12"),
                       internet=IPv4Network("100.64.0.0/10"), mgmt=IPv4Network("192.168.0.0/16"))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "national"
        write_dir(build(national_units(), plan), out)
        med2, n2 = time_load(out)
    results["national"] = {"sites": n2, "communes": n2 - 1, "median_s": round(med2, 4), "goal_s": 5.0}
    print(f"national (synthetic, 2025 map): {n2 - 1} communes, load+validate median {med2:.3f} s (goal ≤ 5 s)")
    doc = {"benchmark": "inventory load+validate", "runs": RUNS, "python": platform.python_version(),
           "machine": f"{platform.machine()}, {os.cpu_count()} cores", "results": results}
    (REPO / "bench" / "results").mkdir(parents=True, exist_ok=True)
    (REPO / "bench" / "results" / "inventory.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
