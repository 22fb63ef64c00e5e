"""Benchmark: our full audit of the running lab vs Nornir + nornir_netmiko and ansible-playbook (same commands).

Same run, same lab, same show commands on every router (`show interface json`, `show ip route json`,
`show running-config` — what our device/drift/compliance checks gather in one session per device):
- ours: `conftool.audit` with every check (reachability probes on three links, device, drift, compliance,
  hosts) — it does more than the anchors;
- Nornir 3 + nornir_netmiko `netmiko_send_command`, the threaded runner with 20 workers, one connection per host
  reused for the three commands, the same Netmiko connection arguments as ours;
- ansible-playbook as a network engineer writes it for show commands: `ansible.netcommon.network_cli`
  (paramiko) with `ansible_network_os: cisco.ios.ios` (the lab's vtysh CLI is IOS-like; PyPI's `ansible` 12
  bundle has no FRR collection, as in bench/deploy.py) and one `cisco.ios.ios_command` task running the same
  three commands, forks 5 and 50, gather_facts off; beside it the cheapest Ansible path, `ansible.builtin.raw`
  over OpenSSH with ControlPersist (the routers' login shell runs a command given on the SSH exec channel).
Medians of 3. With `--dead`, 10 % of the routers (at least one) are taken down with `conftool lab fault
--router --down` and our audit is timed again (goal: ≤ normal time + one timeout); faults are cleared at the end.

Needs a running lab (`conftool lab up`, small or full) that was deployed (`conftool deploy --apply`); it never
brings one up itself. `pip install -e .[bench]` for the Ansible collections. Writes bench/results/audit.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from conftool.audit import registry  # noqa: E402
from conftool.audit.results import Status  # noqa: E402
from conftool.audit.rules import load_rules  # noqa: E402
from conftool.audit.runner import Auditor, Target  # noqa: E402
from conftool.devices.session import Target as DevTarget  # noqa: E402
from conftool.devices.session import netmiko_params  # noqa: E402
from conftool.inventory import Inventory, load  # noqa: E402
from conftool.inventory.secrets import default_state_dir  # noqa: E402
from conftool.lab.lab import current  # noqa: E402

RUNS = 3
COMMANDS = ("show interface json", "show ip route json", "show running-config")
CONFTOOL = str(Path(sys.executable).parent / "conftool")


def lab_selection(inv: Inventory) -> tuple[Inventory, Any]:
    st = current(default_state_dir())
    if st is None or st.plan is None or st.status != "running" or not st.is_live():
        sys.exit("no lab is running: `conftool lab up` (and `conftool deploy --apply`) first")
    return inv.select([r.site for r in st.plan.routers]), st.plan


TIMINGS: list[dict[str, Any]] = []


def ours(inv: Inventory, sel: Inventory, plan: Any, checks: list[str] | None = None,
         procs: int | None = None) -> tuple[float, dict[str, int]]:
    auditor = Auditor(inv=inv, selection=sel, checks=registry.get(checks), rules=load_rules(inv.base_dir),
                      target=Target("lab", plan, default_state_dir()), selector="bench", procs=procs)
    t0, cpu0 = time.perf_counter(), os.times()
    run = auditor.run_sync()
    wall = time.perf_counter() - t0
    cpu1 = os.times()
    TIMINGS.append({"checks": ",".join(checks or ["all"]), "procs": procs, "wall_s": round(wall, 3),
                    "cpu_self_s": round(cpu1.user + cpu1.system - cpu0.user - cpu0.system, 2),
                    "cpu_children_s": round(cpu1.children_user + cpu1.children_system - cpu0.children_user
                                            - cpu0.children_system, 2), **auditor.timings})
    return wall, run.summary()


def ours_cli(workdir: Path) -> float:
    """The same audit as a user runs it (`conftool audit run --json`): process start-up and imports included,
    like ansible-playbook's."""
    t0 = time.perf_counter()
    cp = subprocess.run([CONFTOOL, "audit", "run", "--json", "--db", f"sqlite:///{workdir / 'bench.db'}"],
                        capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if cp.returncode not in (0, 1):
        raise SystemExit(f"conftool audit run failed: {cp.stderr[-800:]}")
    return wall


def nornir_run(inv: Inventory, sel: Inventory) -> float:
    from nornir.core import Nornir
    from nornir.core.inventory import ConnectionOptions, Defaults, Groups, Host, Hosts
    from nornir.core.inventory import Inventory as NornirInventory
    from nornir.core.plugins.connections import ConnectionPluginRegister
    from nornir.core.task import Task
    from nornir.plugins.runners import ThreadedRunner
    from nornir_netmiko.tasks import netmiko_send_command  # type: ignore[import-untyped]

    ConnectionPluginRegister.auto_register()  # what InitNornir does: the netmiko plugin from its entry point
    hosts = Hosts()
    for s in sel.sites:
        for d in s.routers:
            p = netmiko_params(inv, DevTarget(s, d))
            extras = {k: v for k, v in p.items() if k not in ("host", "port", "username", "password",
                                                               "device_type")}
            hosts[d.hostname] = Host(name=d.hostname, hostname=p["host"], port=p["port"], username=p["username"],
                                     password=p.get("password"), platform=p["device_type"],
                                     connection_options={"netmiko": ConnectionOptions(extras=extras)})
    nr = Nornir(inventory=NornirInventory(hosts=hosts, groups=Groups(), defaults=Defaults()),
                runner=ThreadedRunner(num_workers=20))

    def show(task: Task) -> None:
        for c in COMMANDS:
            task.run(task=netmiko_send_command, command_string=c, name=c)
        task.host.close_connections()

    t0, cpu0 = time.perf_counter(), os.times()
    res = nr.run(task=show)
    wall = time.perf_counter() - t0
    cpu1 = os.times()
    TIMINGS.append({"checks": "nornir", "wall_s": round(wall, 3),
                    "cpu_self_s": round(cpu1.user + cpu1.system - cpu0.user - cpu0.system, 2)})
    failed = [h for h, r in res.items() if r.failed]
    if failed:
        raise SystemExit(f"nornir: {len(failed)} hosts failed: {res[failed[0]][0].exception}")
    return wall


NETWORK_PLAY = """\
- name: Show commands on every router
  hosts: routers
  gather_facts: false
  tasks:
    - name: The same three show commands
      cisco.ios.ios_command:
        commands:
{commands}
"""


def ansible_run(inv: Inventory, sel: Inventory, forks: int, workdir: Path, mode: str = "network_cli") -> float:
    """One ansible-playbook process: `network_cli` + `cisco.ios.ios_command`, or `raw` over OpenSSH."""
    lines = ["[routers]"]
    for s in sel.sites:
        for d in s.routers:
            p = netmiko_params(inv, DevTarget(s, d))
            lines.append(f"{d.hostname} ansible_host={p['host']} ansible_user={p['username']} "
                         f"ansible_ssh_private_key_file={p.get('key_file', '')}")
    if mode == "network_cli":
        lines += ["[routers:vars]", "ansible_connection=ansible.netcommon.network_cli",
                  "ansible_network_os=cisco.ios.ios", "ansible_network_cli_ssh_type=paramiko",
                  f"ansible_python_interpreter={sys.executable}"]
        play = NETWORK_PLAY.format(commands="\n".join(f"          - {c}" for c in COMMANDS))
    else:
        tasks = "\n".join(f"    - name: {c}\n      ansible.builtin.raw: \"{c}\"\n      changed_when: false"
                          for c in COMMANDS)
        play = f"- hosts: routers\n  gather_facts: false\n  tasks:\n{tasks}\n"
    (workdir / "hosts.ini").write_text("\n".join(lines) + "\n")
    (workdir / "audit.yml").write_text(play)
    env = {**os.environ, "ANSIBLE_HOST_KEY_CHECKING": "False", "ANSIBLE_SSH_ARGS": "-o ControlMaster=auto "
           "-o ControlPersist=60s -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no",
           "ANSIBLE_PARAMIKO_HOST_KEY_CHECKING": "False", "ANSIBLE_PARAMIKO_LOOK_FOR_KEYS": "False",
           "ANSIBLE_HOME": str(workdir / "home"), "ANSIBLE_PERSISTENT_CONTROL_PATH_DIR": str(workdir / "pc"),
           "ANSIBLE_CONTROL_PATH_DIR": str(workdir / "cp"), "ANSIBLE_LOCAL_TEMP": str(workdir / "tmp"),
           "ANSIBLE_NOCOLOR": "1", "ANSIBLE_RETRY_FILES_ENABLED": "False"}
    t0 = time.perf_counter()
    cp = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(workdir / "hosts.ini"),
                         "-f", str(forks), str(workdir / "audit.yml")], capture_output=True, text=True, env=env,
                        cwd=workdir)
    wall = time.perf_counter() - t0
    if cp.returncode != 0 or "failed=0" not in cp.stdout or "unreachable=0" not in cp.stdout:
        raise SystemExit(f"ansible-playbook failed (exit {cp.returncode}): {cp.stdout[-1500:]}{cp.stderr[-800:]}")
    return wall


def median(fn: Any, runs: int = RUNS) -> tuple[float, list[float]]:
    times = []
    for _ in range(runs):
        times.append(float(fn()))
        print(f"  run {len(times)}: {times[-1]:.2f} s (load {os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True)
    return statistics.median(times), [round(t, 3) for t in times]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=RUNS)
    ap.add_argument("--dead", action="store_true", help="also time our audit with 10 %% of routers down")
    ap.add_argument("--no-ansible", action="store_true")
    ap.add_argument("--ansible-runs", type=int, default=RUNS, help="runs per Ansible variant (they are slow)")
    ap.add_argument("--raw-runs", type=int, default=1, help="runs per `raw` Ansible variant (0: skip it)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    inv = load(Path(os.environ.get("LIENTHONG_INVENTORY", REPO / "inventory" / "dien-bien")))
    sel, plan = lab_selection(inv)
    n = sum(len(s.routers) for s in sel.sites)
    out: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                           "profile": plan.profile, "routers": n, "commands": list(COMMANDS), "runs": args.runs}
    summaries: list[dict[str, int]] = []

    def ours_once() -> float:
        t, s = ours(inv, sel, plan)
        summaries.append(s)
        return t

    load0 = os.getloadavg()
    out["ours_s"], out["ours_runs"] = median(ours_once, args.runs)
    out["ours_summary"] = summaries[-1]
    # the "doing more": reachability, drift and compliance on top of the device check, without `hosts`
    out["ours_routers_s"], out["ours_routers_runs"] = median(
        lambda: ours(inv, sel, plan, ["reachability", "device", "drift", "compliance"])[0], args.runs)
    # the same work as the anchors (one session per router, the three show commands) plus parsing and judging
    out["ours_show_only_s"], out["ours_show_only_runs"] = median(
        lambda: ours(inv, sel, plan, ["device", "drift", "compliance"])[0], args.runs)
    with tempfile.TemporaryDirectory(prefix="lt-bench-cli-") as tmp:
        out["ours_cli_s"], out["ours_cli_runs"] = median(lambda: ours_cli(Path(tmp)), args.runs)
    out["nornir_s"], out["nornir_runs"] = median(lambda: nornir_run(inv, sel), args.runs)
    if args.dead:
        routers = [r.site for r in plan.routers if r.site != plan.province]
        dead = routers[:: max(1, round(len(routers) / max(1, round(n * 0.1))))][: max(1, round(n * 0.1))]
        try:
            for sid in dead:
                subprocess.run([CONFTOOL, "lab", "fault", sid, "--router", "--down"], check=True,
                               capture_output=True)
            out["dead_sites"] = dead
            out["dead_s"], out["dead_runs"] = median(lambda: ours(inv, sel, plan)[0], args.runs)
            out["timeout_s"] = max(d.timeout_s for s in sel.sites for d in s.routers)
        finally:
            for sid in dead:
                subprocess.run([CONFTOOL, "lab", "fault", "--clear", sid], capture_output=True)
    if not args.no_ansible:
        with tempfile.TemporaryDirectory(prefix="lt-bench-ansible-") as tmp:
            variants = [("network_cli", 5), ("network_cli", 50)] + ([("raw", 5), ("raw", 50)] if args.raw_runs else [])
            for mode, forks in variants:
                key = f"ansible_f{forks}_s" if mode == "network_cli" else f"ansible_raw_f{forks}_s"
                try:
                    out[key], out[key.replace("_s", "_runs")] = median(
                        lambda f=forks, m=mode: ansible_run(inv, sel, f, Path(tmp), m),
                        args.ansible_runs if mode == "network_cli" else args.raw_runs)
                except SystemExit as exc:  # keep what was measured; say why this anchor has no figure
                    out[key.replace("_s", "_error")] = str(exc)[-1500:]
                    print(f"{key}: FAILED {str(exc)[-600:]}", file=sys.stderr)
                    continue
                print(f"{key}: {out[key]:.2f}", file=sys.stderr)
    out["load_avg_start"] = [round(x, 1) for x in load0]
    out["load_avg_end"] = [round(x, 1) for x in os.getloadavg()]
    out["timings"] = TIMINGS
    out["ratio_ours_vs_nornir"] = round(out["ours_s"] / out["nornir_s"], 3)
    out["ratio_ours_routers_vs_nornir"] = round(out["ours_routers_s"] / out["nornir_s"], 3)
    out["ratio_ours_show_only_vs_nornir"] = round(out["ours_show_only_s"] / out["nornir_s"], 3)
    if "ansible_f5_s" in out:
        # like for like: both are processes started from the shell
        out["speedup_vs_ansible_f5"] = round(out["ansible_f5_s"] / out["ours_cli_s"], 1)
        out["speedup_vs_ansible_f50"] = round(out["ansible_f50_s"] / out["ours_cli_s"], 1)
    if "ansible_raw_f5_s" in out:
        out["speedup_vs_ansible_raw_f5"] = round(out["ansible_raw_f5_s"] / out["ours_cli_s"], 1)
    if "dead_s" in out:
        out["dead_within_budget"] = out["dead_s"] <= out["ours_s"] + out["timeout_s"]
    bad = summaries[-1].get(Status.FAIL.value, 0) + summaries[-1].get(Status.ERROR.value, 0)
    out["note"] = ("ours = full audit (probes + device + drift + compliance + hosts); ours_routers = without the "
                   "hosts check; anchors = the same show commands only"
                   + (f"; WARNING: our last run had {bad} fail/error findings" if bad else ""))
    dest = REPO / "bench" / "results" / "audit.json"
    dest.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
