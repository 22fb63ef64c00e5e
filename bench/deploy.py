"""Benchmark: `conftool deploy --apply` vs `ansible-playbook` (ansible.netcommon.cli_config) on the lab, and render.

Same run, same machine, same lab, same rendered configs:
- ours: the whole `conftool deploy --apply --json` process (interpreter start, inventory load, render, then per
  router: connect, back up, plan, arm the commit-confirm watchdog, apply, verify over a new session, write
  memory, confirm), first deploy from the routers' bootstrap configs, then the no-change re-deploy;
- Ansible: the whole `ansible-playbook` process with `ansible.netcommon.network_cli` (paramiko) and
  `ansible_network_os: cisco.ios.ios` (the lab's routers speak vtysh, whose CLI is IOS-like; PyPI's `ansible` 12
  bundle has no FRR collection), one play: `ansible.netcommon.cli_config` with `backup: true` pushing the config
  file our renderer wrote for the router (cli_config diffs it against the running config and sends the
  difference), then `write memory` when something changed; forks 5 and 50, first run and no-change run.
  Ansible does no verify and no commit-confirm: it does less work than ours.
The lab is taken down and brought up again (bootstrap configs) before every first deploy. Medians of RUNS runs.
Render of 140 (Điện Biên) and 1,000 (synthetic) sites, ours vs Nornir + nornir_jinja2 with a shared
Environment (its fastest variant), reuses bench/render.py's functions.

Goals (issue 5): deploy ≥ 10× faster than Ansible; no-change re-deploy ≤ half the first deploy; render within
1.1× of Nornir. Writes bench/results/deploy.json. Needs root; holds the tests' lab lock for its whole run.

    pip install -e .[bench]        # ansible 12.x (collections) next to ansible-core 2.19
    python bench/deploy.py [--profile small|full] [--runs 3] [--forks 5,50] [--no-render]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.render import nornir_shared_env, synthetic_1000, timed  # noqa: E402
from bench.render import ours as render_ours  # noqa: E402
from conftool.inventory import load  # noqa: E402
from conftool.render import Renderer  # noqa: E402

BIN = Path(sys.executable).parent
CONFTOOL = str(BIN / "conftool")
ANSIBLE_PLAYBOOK = str(BIN / "ansible-playbook")
LOCK = Path("/tmp/lt-lab-tests.lock")
INVENTORY = REPO / "inventory" / "dien-bien"

PLAYBOOK = """\
- name: Push the rendered router configs
  hosts: routers
  gather_facts: false
  tasks:
    - name: Apply the intended config (cli_config diffs it against the running config)
      ansible.netcommon.cli_config:
        config: "{{ lookup('ansible.builtin.file', cfg_dir + '/' + inventory_hostname + '.cfg') }}"
        backup: true
        backup_options:
          dir_path: "{{ backup_dir }}"
          filename: "{{ inventory_hostname }}.cfg"
      register: pushed
    - name: Save
      ansible.netcommon.cli_command:
        command: write memory
      # not `pushed.changed`: with `backup: true`, netcommon's action plugin overwrites `changed` with "the backup
      # file changed" (plugins/action/network.py, _handle_backup_option), so a first deploy onto routers whose
      # running config matched an earlier run's backup reported changed=false and skipped the save
      when: pushed.commands | default([]) | length > 0
"""


@contextmanager
def lab_lock() -> Iterator[None]:
    with LOCK.open("a") as f:
        print(f"waiting for the lab lock {LOCK} …", flush=True)
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class Bench:
    def __init__(self, profile: str, work: Path) -> None:
        self.profile = profile
        self.work = work
        self.state = work / "state"
        self.state.mkdir()
        self.env = {**os.environ, "LIENTHONG_STATE": str(self.state), "LIENTHONG_INVENTORY": str(INVENTORY)}
        self.inv = load(INVENTORY)
        self.runs = 0

    def cli(self, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
        return subprocess.run([CONFTOOL, *args], capture_output=True, text=True, env=self.env, timeout=timeout,
                              cwd=REPO)

    def up(self) -> None:
        cp = self.cli("lab", "up", "--profile", self.profile, "--json")
        if cp.returncode != 0:
            raise SystemExit(f"lab up failed: {cp.stderr[-2000:]}")

    def down(self) -> None:
        self.cli("lab", "down")

    def sites(self) -> list[str]:
        doc = json.loads(self.cli("lab", "status", "--json").stdout)
        return [n["site"] for n in doc["nodes"] if n["role"] == "router"]

    # --- ours ---------------------------------------------------------------------------------------------------
    def ours(self, expect: str) -> dict[str, Any]:
        t = time.perf_counter()
        cp = self.cli("deploy", "--apply", "--json")
        dt = time.perf_counter() - t
        doc = json.loads(cp.stdout)
        statuses = {i["status"] for i in doc["items"]}
        if cp.returncode != 0 or statuses != {expect}:
            bad = [(i["device"], i["status"], i["detail"][:300]) for i in doc["items"] if i["status"] != expect]
            raise SystemExit(f"our deploy: expected every router {expect}, got {doc['summary']}: {bad[:5]}")
        # Where the time goes: per step, the median over routers (and the slowest router's whole deploy).
        phases: dict[str, list[float]] = {}
        for i in doc["items"]:
            for k, v in (i.get("phases") or {}).items():
                phases.setdefault(k, []).append(v)
        per_device = [i["seconds"] for i in doc["items"]]
        return {"seconds": dt, "routers": len(doc["items"]), "loadavg_1m": round(os.getloadavg()[0], 2),
                "device_seconds_median": med(per_device), "device_seconds_max": round(max(per_device), 3),
                "phase_median_s": {k: med(v) for k, v in phases.items()}}

    # --- Ansible ------------------------------------------------------------------------------------------------
    def ansible_files(self, sites: list[str]) -> Path:
        """Inventory, playbook and the SAME configs our deploy pushes (rendered by our renderer)."""
        a = self.work / "ansible"
        cfg = a / "configs"
        cfg.mkdir(parents=True, exist_ok=True)
        renderer = Renderer(self.inv)
        hosts: dict[str, Any] = {}
        for sid in sites:
            site = self.inv.get(sid)
            dev = site.router
            assert dev is not None and dev.mgmt_address is not None
            (cfg / f"{dev.hostname}.cfg").write_text(renderer.render_config(site, dev))
            hosts[dev.hostname] = {"ansible_host": str(dev.mgmt_address), "ansible_user": dev.username}
        inventory = {"routers": {"hosts": hosts, "vars": {
            "ansible_connection": "ansible.netcommon.network_cli",
            "ansible_network_os": "cisco.ios.ios",
            "ansible_network_cli_ssh_type": "paramiko",
            "ansible_ssh_private_key_file": str(self.state / "lab" / "keys" / "netops_ed25519"),
            "ansible_python_interpreter": sys.executable,
            "cfg_dir": str(cfg), "backup_dir": str(a / "backups")}}}
        (a / "inventory.json").write_text(json.dumps(inventory, indent=1))
        (a / "deploy.yml").write_text(PLAYBOOK)
        return a

    def ansible(self, a: Path, forks: int, timeout: float = 3600) -> dict[str, Any]:
        env = {**self.env, "ANSIBLE_HOST_KEY_CHECKING": "False", "ANSIBLE_PARAMIKO_HOST_KEY_CHECKING": "False",
               "ANSIBLE_PARAMIKO_LOOK_FOR_KEYS": "False", "ANSIBLE_HOME": str(a / "home"),
               "ANSIBLE_LOCAL_TEMP": str(a / "tmp"), "ANSIBLE_PERSISTENT_CONTROL_PATH_DIR": str(a / "pc"),
               "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", "ANSIBLE_RETRY_FILES_ENABLED": "False",
               "ANSIBLE_NOCOLOR": "1"}
        self.runs += 1  # a fresh backup dir per run: see PLAYBOOK (the backup's change decides `changed`)
        backups = a / "backups" / f"run-{self.runs}"
        # made here: netcommon's backup makes it per host (exists check, then makedirs), and two forks racing
        # there failed a host with "[Errno 17] File exists" (2026-11-23, forks 5) — not a deploy failure
        backups.mkdir(parents=True)
        t = time.perf_counter()
        proc = subprocess.Popen([ANSIBLE_PLAYBOOK, "-i", str(a / "inventory.json"), "-f", str(forks),
                                 "-e", f"backup_dir={backups}", str(a / "deploy.yml")],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=a,
                                start_new_session=True)
        try:
            stdout, stderr = proc.communicate(timeout=max(30.0, timeout))
        except subprocess.TimeoutExpired:
            # Out of lab time: stop Ansible and its forks (their own process group); the time is a lower bound.
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return {"seconds": time.perf_counter() - t, "timed_out": True, "hosts": 0}
        dt = time.perf_counter() - t
        cp = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
        try:
            out = json.loads(cp.stdout)
            stats = out["stats"]
            pushed = out["plays"][0]["tasks"][0]["hosts"]
        except (ValueError, KeyError, IndexError):
            raise SystemExit(f"ansible-playbook output not understood (rc {cp.returncode}):\n"
                             f"{cp.stdout[-3000:]}\n{cp.stderr[-3000:]}") from None
        failed = sorted(h for h, s in stats.items() if s.get("failures") or s.get("unreachable"))
        if len(failed) > len(stats) // 10:  # not a measurement of a deploy any more
            raise SystemExit(f"ansible-playbook failed on {len(failed)} hosts {failed[:10]}:\n{cp.stdout[-4000:]}")
        # A few failed hosts (a timeout under load) are the anchor's result, not the bench's: keep the run, say why
        reasons: dict[str, str] = {}
        for task in out["plays"][0]["tasks"]:
            for h, r in task["hosts"].items():
                if h in failed and h not in reasons:
                    reasons[h] = str(r.get("msg") or r.get("stderr") or "")[:300]
        sent = [len(r.get("commands") or []) for r in pushed.values()]
        saved = out["plays"][0]["tasks"][1]["hosts"] if len(out["plays"][0]["tasks"]) > 1 else {}
        return {"seconds": dt, "hosts": len(stats), "loadavg_1m": round(os.getloadavg()[0], 2),
                **({"hosts_failed": reasons} if failed else {}),
                "hosts_changed": sum(1 for s in stats.values() if s["changed"]),
                "hosts_saved": sum(1 for r in saved.values() if not r.get("skipped")),
                "config_lines_sent_median": statistics.median(sent) if sent else 0}

    def routers_as_intended(self) -> int:
        """How many routers run their intended config (our normalised diff), to say what Ansible achieved."""
        doc = json.loads(self.cli("diff", "--json").stdout)
        return sum(1 for i in doc["items"] if i["status"] == "unchanged")


def med(xs: list[float]) -> float:
    return round(statistics.median(xs), 3)


def run_deploys(profile: str, runs: int, forks_list: list[int], budget_s: float,
                first_only: set[int], until: datetime | None = None) -> dict[str, Any]:
    skipped: list[str] = []
    with lab_lock(), tempfile.TemporaryDirectory(prefix="lt-bench-deploy-") as tmp:
        b = Bench(profile, Path(tmp))
        raw: dict[str, list[dict[str, Any]]] = {"ours_first": [], "ours_nochange": []}
        for f in forks_list:
            raw[f"ansible_f{f}_first"], raw[f"ansible_f{f}_nochange"] = [], []
        b.down()  # a stale lab of this (fresh) state dir cannot exist; harmless
        locked_at = time.monotonic()
        if until is not None:  # a shared lab: whatever the budget, give it back by this time
            budget_s = min(budget_s, until.timestamp() - time.time())
        try:
            for run in range(runs):
                b.up()
                sites = b.sites()
                raw["ours_first"].append(b.ours("changed"))
                raw["ours_nochange"].append(b.ours("unchanged"))
                print(f"run {run + 1}: ours first {raw['ours_first'][-1]['seconds']:.2f} s, no-change "
                      f"{raw['ours_nochange'][-1]['seconds']:.2f} s ({len(sites)} routers)", flush=True)
                b.down()
                a = b.ansible_files(sites)
                for f in forks_list:
                    left = budget_s - (time.monotonic() - locked_at)
                    # the lab is shared: give it back in time; and do not start a run that cannot finish
                    # (a cut run is only a lower bound) — judged by this fork count's last first+no-change time
                    need = 1.2 * sum(raw[k][-1]["seconds"] for k in (f"ansible_f{f}_first", f"ansible_f{f}_nochange")
                                     if raw[k])
                    if left <= 0 or left < need:
                        skipped.append(f"run {run + 1} ansible forks {f}: lab time budget ({budget_s:.0f} s) used up "
                                       f"({left:.0f} s left, the last run took {need / 1.2:.0f} s)")
                        print(skipped[-1], flush=True)
                        continue
                    b.up()
                    left = budget_s - (time.monotonic() - locked_at)
                    first = b.ansible(a, f, timeout=left)
                    raw[f"ansible_f{f}_first"].append(first)
                    print(f"run {run + 1}: ansible forks {f} first {first['seconds']:.2f} s {first}", flush=True)
                    if first.get("timed_out"):
                        b.down()
                        continue
                    first["routers_as_intended_after"] = b.routers_as_intended()
                    if f in first_only:
                        b.down()
                        continue
                    again = b.ansible(a, f, timeout=budget_s - (time.monotonic() - locked_at))
                    if not again.get("timed_out"):
                        again["routers_as_intended_after"] = b.routers_as_intended()
                    raw[f"ansible_f{f}_nochange"].append(again)
                    print(f"run {run + 1}: ansible forks {f} no-change {again['seconds']:.2f} s {again}", flush=True)
                    b.down()
        finally:
            b.down()
    out: dict[str, Any] = {"routers": len(sites), "loadavg_at_end": round(os.getloadavg()[0], 2)}
    if skipped:
        out["skipped"] = skipped
    for k, rows in raw.items():
        if not rows:
            continue
        out[k] = {"median_s": med([r["seconds"] for r in rows]), "lower_bound": any(r.get("timed_out") for r in rows),
                  "runs": [
            {**r, "seconds": round(r["seconds"], 3)} for r in rows]}
    return out


def merge_deploys(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Pool the runs of two lab sessions per measurement and recompute the medians (`--merge`)."""
    out: dict[str, Any] = {**old, **{k: v for k, v in new.items() if not isinstance(v, dict)}}
    for k, v in new.items():
        if not isinstance(v, dict) or "runs" not in v:
            continue
        runs = [*(old.get(k) or {}).get("runs", []), *v["runs"]]
        out[k] = {"median_s": med([r["seconds"] for r in runs]),
                  "lower_bound": any(r.get("timed_out") for r in runs), "runs": runs}
    return out


def run_render() -> dict[str, Any]:
    res: dict[str, Any] = {}
    for size, inv in (("140", load(INVENTORY)), ("1000", synthetic_1000())):
        o, o_runs, o_out = timed(render_ours, inv)
        n, n_runs, n_out = timed(nornir_shared_env, inv)
        res[size] = {"ours": {"median_s": round(o, 4), "runs_s": [round(x, 4) for x in o_runs]},
                     "nornir_jinja2_shared_env": {"median_s": round(n, 4), "runs_s": [round(x, 4) for x in n_runs]},
                     "identical_output": o_out == n_out, "ratio": round(o / n, 3), "goal_within_1_1x": o <= 1.1 * n}
        print(f"render {size}: ours {o:.3f} s, nornir {n:.3f} s", flush=True)
    return res


def versions() -> dict[str, str]:
    from importlib.metadata import version

    return {p: version(p) for p in ("ansible", "ansible-core", "netmiko", "paramiko", "nornir", "jinja2")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--profile", default="small", choices=("small", "full"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--forks", default="5,50")
    ap.add_argument("--no-render", action="store_true")
    ap.add_argument("--until", help="UTC time HH:MM by which the lab must be free again (limits Ansible runs)")
    ap.add_argument("--first-only-forks", default="", help="forks whose no-change Ansible run is skipped (time)")
    ap.add_argument("--budget-s", type=float, default=1500, help="skip Ansible runs that would start after this "
                    "many seconds of holding the lab")
    ap.add_argument("--merge", action="store_true", help="add this run's runs to the profile's stored entry "
                    "(a benchmark split over several lab sessions; every session measures ours too)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("the lab needs root")
    if not Path(ANSIBLE_PLAYBOOK).exists():
        raise SystemExit("ansible-playbook missing: pip install -e .[bench]")
    forks_list = [int(x) for x in args.forks.split(",")]
    # SIGTERM unwinds like Ctrl-C: the running child is killed and `finally` takes the lab down before the lock
    # is released (a killed bench must not leave a lab behind for the next holder of the lock).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.time()
    load_at_start = os.getloadavg()
    first_only = {int(x) for x in args.first_only_forks.split(",") if x}
    until = None
    if args.until:
        hh, mm = (int(x) for x in args.until.split(":"))
        until = datetime.now(UTC).replace(hour=hh, minute=mm, second=0, microsecond=0)
    deploys = run_deploys(args.profile, args.runs, forks_list, args.budget_s, first_only, until)
    out = REPO / "bench" / "results" / "deploy.json"
    # One file for every profile measured: a run replaces its own profile's entry and keeps the others.
    doc: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    session = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "runs": args.runs, "forks": forks_list,
               "loadavg_at_start": [round(x, 2) for x in load_at_start],
               "loadavg_at_end": deploys["loadavg_at_end"], "wall_s": round(time.time() - started, 1)}
    old = doc.get("profiles", {}).get(args.profile) if args.merge else None
    if old is not None:
        deploys = merge_deploys(old["deploy"], deploys)
        forks_list = sorted(set(old.get("forks", [])) | set(forks_list))
    ours_first = deploys["ours_first"]["median_s"]
    goals: dict[str, Any] = {"nochange_le_half_first": deploys["ours_nochange"]["median_s"] <= ours_first / 2,
                             "nochange_over_first": round(deploys["ours_nochange"]["median_s"] / ours_first, 3)}
    for f in forks_list:
        if f"ansible_f{f}_first" not in deploys:
            continue
        for kind in ("first", "nochange"):
            if f"ansible_f{f}_{kind}" not in deploys:
                continue
            ratio = deploys[f"ansible_f{f}_{kind}"]["median_s"] / deploys[f"ours_{kind}"]["median_s"]
            goals[f"ansible_f{f}_{kind}_over_ours"] = round(ratio, 2)
        goals[f"ge_10x_faster_than_ansible_f{f}"] = goals[f"ansible_f{f}_first_over_ours"] >= 10
    entry: dict[str, Any] = {
        "date": session["date"],
        "runs": args.runs,
        "forks": forks_list,
        "loadavg_at_start": session["loadavg_at_start"],
        "sessions": [*(old.get("sessions", []) if old is not None else []), session],
        "deploy": deploys,
        "goals": goals,
    }
    doc.update({
        "bench": "deploy",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "versions": versions(),
        "ansible": {"connection": "ansible.netcommon.network_cli (ssh_type paramiko)",
                    "network_os": "cisco.ios.ios", "module": "ansible.netcommon.cli_config (backup: true) "
                    "+ cli_command 'write memory' when changed"},
    })
    doc.setdefault("profiles", {})[args.profile] = entry
    if not args.no_render:
        doc["render"] = {"date": entry["date"], **run_render()}
    entry["wall_s"] = round(time.time() - started, 1) + sum(x["wall_s"] for x in entry["sessions"][:-1])
    out.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(goals, indent=1))
    print("wrote", out)


if __name__ == "__main__":
    shutil.which("ip") or sys.exit("iproute2 missing")
    main()
