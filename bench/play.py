"""Benchmark: `baseline.yml` on the full lab's 129 meeting-room hosts — forks 5 vs 50 vs our default, first run
and no-change run, plus the settings that decide a 129-host run on 2 cores (pipelining, strategy).

Each case runs `conftool.play.run_play` (ansible-runner → ansible-playbook over SSH into the host namespaces), the
same code path as `conftool play`. Facts are never gathered by our playbooks (gather_facts: false), so fact
caching has nothing to cache; the bench records that instead of timing a no-op.

"First run" needs hosts that were never baselined: each first-run case takes its own slice of hosts that no
earlier case touched (fresh overlays), so the full-profile lab is brought up once. No-change runs go over every
host already baselined. A time budget (--budget, default 780 s of playbook time) skips what does not fit, and
says so in the results.

    python bench/play.py [--profile full|small] [--budget 780]        # writes bench/results/play.json
Needs root and no other lab running (it takes the tests' lab lock).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from conftool.inventory import load  # noqa: E402
from conftool.play import DEFAULT_FORKS, PlayOptions, linux_hosts, run_play  # noqa: E402

CONFTOOL = str(Path(sys.executable).parent / "conftool")
LOCK = Path("/tmp/lt-lab-tests.lock")
PLAYBOOK = REPO / "playbooks" / "baseline.yml"


def cli(env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CONFTOOL, *args], capture_output=True, text=True, env=env, timeout=timeout, cwd=REPO)


def cpu_s() -> float:
    """CPU seconds of this process's children so far (ansible-playbook and its workers, ssh)."""
    t = os.times()
    return t.children_user + t.children_system


def case(inv: Any, hosts: list[Any], state: Path, label: str, phase: str, **opts: Any) -> dict[str, Any]:
    o = PlayOptions(**opts)
    c0, t0 = cpu_s(), time.monotonic()
    rep = run_play(inv, PLAYBOOK, hosts, o, state_dir=state, lab=True)
    if rep.runner_status == "canceled":  # Ctrl-C reached ansible-runner: stop the bench (and take the lab down)
        raise KeyboardInterrupt
    wall, cpu = time.monotonic() - t0, cpu_s() - c0
    s = rep.summary()
    out = {"case": label, "phase": phase, "hosts": len(hosts), "forks": o.forks, "strategy": o.strategy,
           "pipelining": o.pipelining, "wall_s": round(wall, 1), "controller_cpu_s": round(cpu, 1),
           "s_per_host": round(wall / max(1, len(hosts)), 2), "ok": s["ok"], "changed": s["changed"],
           "failed": s["failed"], "unreachable": s["unreachable"]}
    if rep.errors:
        out["errors"] = rep.errors
    out["slowest_tasks_s"] = sorted(rep.task_seconds, key=lambda x: -x[1])[:6]
    out["projected_129_hosts_s"] = round(wall / max(1, len(hosts)) * 129, 0)
    print(json.dumps(out), flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="full", choices=["full", "small"])
    ap.add_argument("--budget", type=float, default=780.0, help="seconds of playbook time before cases are skipped")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "play.json"))
    ap.add_argument("--slice", type=int, default=20, help="fresh hosts per first-run case")
    ap.add_argument("--nochange-hosts", type=int, default=40, help="baselined hosts per no-change case")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench/play.py needs root (the lab)", file=sys.stderr)
        return 2
    state = Path(tempfile.mkdtemp(prefix="lt-bench-play-"))
    env = {**os.environ, "LIENTHONG_STATE": str(state), "LIENTHONG_INVENTORY": str(REPO / "inventory" / "dien-bien")}
    os.environ.update({"LIENTHONG_STATE": str(state)})
    results: list[dict[str, Any]] = []
    skipped: list[str] = []
    with LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        t0 = time.monotonic()
        try:
            up = cli(env, "lab", "up", "--profile", args.profile, "--json")
            if up.returncode != 0:
                print(up.stdout[-2000:], up.stderr[-2000:], file=sys.stderr)
                return 1
            lab_up_s = time.monotonic() - t0
            inv = load(REPO / "inventory" / "dien-bien")
            from conftool.lab import running_sites

            inv = inv.select(running_sites(state) or [])
            rooms = [h for h in linux_hosts(inv) if h[1].role.value == "meeting-endpoint"]
            n = len(rooms)
            k, m = args.slice, args.nochange_hosts
            budget_end = time.monotonic() + args.budget
            # First runs need never-baselined hosts: each takes its own fresh slice. No-change runs go over the
            # first m baselined hosts. The machine's 2 cores run the controller AND every host's modules, so
            # the time of a 129-host run is projected from s/host (stated as such in the results).
            plan: list[tuple[str, str, list[Any], dict[str, Any]]] = [
                (f"default (forks {DEFAULT_FORKS})", "first", rooms[:k], {}),
                ("forks 50", "first", rooms[k:2 * k], {"forks": 50}),
                ("forks 5", "first", rooms[2 * k:3 * k], {"forks": 5}),
                (f"default (forks {DEFAULT_FORKS})", "no-change", rooms[:m], {}),
                ("forks 50", "no-change", rooms[:m], {"forks": 50}),
                ("forks 5", "no-change", rooms[:m], {"forks": 5}),
                ("forks 50, strategy free", "no-change", rooms[:m], {"forks": 50, "strategy": "free"}),
                (f"forks {DEFAULT_FORKS}, no pipelining", "no-change", rooms[:m], {"pipelining": False}),
            ]
            for label, phase, hosts, opts in plan:
                if time.monotonic() > budget_end:
                    skipped.append(f"{label} / {phase}: time budget ({args.budget:.0f} s) spent")
                    continue
                results.append(case(inv, hosts, state, label, phase, **opts))
        finally:
            t1 = time.monotonic()
            cli(env, "lab", "down", timeout=600)
            lab_down_s = time.monotonic() - t1
            subprocess.run(["rm", "-rf", str(state)], check=False)
    doc = {
        "bench": "play", "playbook": "baseline.yml", "profile": args.profile, "meeting_room_hosts": n,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_avg_at_end": [round(x, 1) for x in os.getloadavg()]},
        "lab_up_s": round(lab_up_s, 1), "lab_down_s": round(lab_down_s, 1),
        "fact_caching": "not applicable: the playbooks gather no facts (gather_facts: false)",
        "default_forks": DEFAULT_FORKS, "results": results, "skipped": skipped,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    Path(args.out).write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
