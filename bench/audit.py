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
Medians of 3, interleaved: each round runs every variant once (ours, Nornir, Ansible forks 5 and 50), so a
change in the machine's load hits all of them alike; the load average is recorded with every run. Every run also
records the CPU it cost on both sides: ours (this process and its children) and the routers' (every process in
the lab's namespaces: sshd and the vtysh sessions it reaped, zebra, staticd …), plus the machine's softirq time
and our kernel's own-drop counters (`conftool.audit.kernel`). With `--dead`, 10 % of the routers (at least one)
are taken down with `conftool lab fault --router --down` and our audit is timed again (goal: ≤ normal time + one
timeout); faults are cleared at the end.

Needs a running lab (`conftool lab up`, small or full) that was deployed (`conftool deploy --apply`); it never
brings one up itself. `pip install -e .[bench]` for the Ansible collections. Writes bench/results/audit.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import signal
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
from conftool.audit.kernel import drop_counters  # noqa: E402
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
HZ = os.sysconf("SC_CLK_TCK")
LAB_NS = re.compile(r"^(lt-(\d+|isp|svc|tslcd)|lth-[0-9]+)$")  # conftool.lab's routers, clouds, services, hosts


def lab_namespaces() -> set[str]:
    """`net:[inode]` of the lab's namespaces (routers, clouds, services, hosts)."""
    out = set()
    for n in os.listdir("/run/netns") if os.path.isdir("/run/netns") else []:
        if LAB_NS.match(n):  # not other tools' namespaces (lt-media-bench-…, lt-agents-bench-…)
            try:
                out.add(f"net:[{os.stat('/run/netns/' + n).st_ino}]")
            except OSError:
                continue
    return out


def lab_cpu(nets: set[str]) -> dict[int, tuple[str, float]]:
    """CPU seconds (own + reaped children) of every process living in a lab namespace, by pid."""
    out = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{p}/ns/net") not in nets:
                continue
            st = Path(f"/proc/{p}/stat").read_text()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        out[int(p)] = (st[st.index("(") + 1:st.rindex(")")], sum(int(x) for x in fields[11:15]) / HZ)
    return out


def machine_cpu() -> tuple[float, float]:
    """(busy, softirq) CPU seconds of the whole machine since boot."""
    v = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:9]]
    return (sum(v) - v[3] - v[4]) / HZ, v[6] / HZ


class CpuMeter:
    """What one measured run cost: ours, the routers' side (lab namespaces), the machine, own-kernel drops."""

    def __init__(self) -> None:
        self.nets = lab_namespaces()

    def __enter__(self) -> CpuMeter:
        self.lab0, self.mach0, self.t0 = lab_cpu(self.nets), machine_cpu(), os.times()
        self.drops0 = drop_counters()
        return self

    def __exit__(self, *exc: object) -> None:
        lab1, mach1, t1, drops1 = lab_cpu(self.nets), machine_cpu(), os.times(), drop_counters()
        by: dict[str, float] = {}
        for pid, (comm, v) in lab1.items():
            old = self.lab0.get(pid)
            by[comm] = by.get(comm, 0.0) + v - (old[1] if old and old[0] == comm else 0.0)
        self.figures: dict[str, Any] = {
            "cpu_ours_s": round(t1.user + t1.system - self.t0.user - self.t0.system
                                + t1.children_user + t1.children_system - self.t0.children_user
                                - self.t0.children_system, 2),
            "cpu_routers_s": round(sum(by.values()), 2),
            "cpu_routers_by_process": {k: round(v, 2) for k, v in sorted(by.items(), key=lambda kv: -kv[1])[:5]},
            "cpu_machine_s": round(mach1[0] - self.mach0[0], 2),
            "softirq_machine_s": round(mach1[1] - self.mach0[1], 2),
            "own_drops": {k: drops1[k] - self.drops0[k] for k in drops1 if drops1[k] != self.drops0[k]},
            "load": round(os.getloadavg()[0], 1),
        }


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=RUNS)
    ap.add_argument("--dead", action="store_true", help="also time our audit with 10 %% of routers down")
    ap.add_argument("--no-ansible", action="store_true")
    ap.add_argument("--ansible-runs", type=int, default=RUNS, help="runs per Ansible variant (they are slow)")
    ap.add_argument("--raw-runs", type=int, default=0, help="runs per `raw` Ansible variant (0: skip it)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    inv = load(Path(os.environ.get("LIENTHONG_INVENTORY", REPO / "inventory" / "dien-bien")))
    sel, plan = lab_selection(inv)
    n = sum(len(s.routers) for s in sel.sites)
    gc3 = Path("/proc/sys/net/ipv4/neigh/default/gc_thresh3")
    out: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                       "neigh_gc_thresh3": int(gc3.read_text()) if gc3.exists() else None},
                           "profile": plan.profile, "routers": n, "commands": list(COMMANDS), "runs": args.runs,
                           "order": "interleaved: every round runs each variant once"}
    summaries: list[dict[str, int]] = []

    def ours_full() -> float:
        t, s = ours(inv, sel, plan)
        summaries.append(s)
        return t

    tmp = Path(tempfile.mkdtemp(prefix="lt-bench-audit-"))
    variants: list[tuple[str, Any, int]] = [
        ("ours", ours_full, args.runs),
        # the "doing more": reachability, drift and compliance on top of the device check, without hosts
        ("ours_routers", lambda: ours(inv, sel, plan, ["reachability", "device", "drift", "compliance"])[0],
         args.runs),
        # the same work as the anchors (one session per router, the three show commands) plus parsing and judging
        ("ours_show_only", lambda: ours(inv, sel, plan, ["device", "drift", "compliance"])[0], args.runs),
        ("ours_cli", lambda: ours_cli(tmp), args.runs),
        ("nornir", lambda: nornir_run(inv, sel), args.runs),
    ]
    if not args.no_ansible:
        variants += [(f"ansible_f{f}", lambda f=f: ansible_run(inv, sel, f, tmp), args.ansible_runs) for f in (5, 50)]
        variants += [(f"ansible_raw_f{f}", lambda f=f: ansible_run(inv, sel, f, tmp, "raw"), args.raw_runs)
                     for f in (5, 50)]
    load0 = os.getloadavg()
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k, _, _ in variants}
    failed: dict[str, str] = {}

    def stop(*_: object) -> None:
        raise KeyboardInterrupt  # a time box (SIGTERM) ends the rounds; what was measured is still written

    signal.signal(signal.SIGTERM, stop)
    try:
        for rnd in range(max(r for _, _, r in variants)):
            for key, fn, want in variants:
                if rnd >= want or key in failed:
                    continue
                try:
                    with CpuMeter() as meter:
                        seconds = float(fn())
                except SystemExit as exc:  # keep what was measured; say why this variant has no figure
                    failed[key] = str(exc)[-1500:]
                    print(f"{key}: FAILED {str(exc)[-600:]}", file=sys.stderr)
                    continue
                runs[key].append({"seconds": round(seconds, 3), **meter.figures})
                print(f"round {rnd + 1} {key}: {seconds:.2f} s, CPU ours {meter.figures['cpu_ours_s']} / routers "
                      f"{meter.figures['cpu_routers_s']} (load {meter.figures['load']})", file=sys.stderr,
                      flush=True)
    except KeyboardInterrupt:
        out["interrupted"] = "stopped by its time box; the runs below are what was measured"
        args.dead = False
    for key, rs in runs.items():
        if rs:
            out[f"{key}_s"] = round(statistics.median(r["seconds"] for r in rs), 3)
            out[f"{key}_runs"] = rs
            out[f"{key}_cpu_median"] = {c: round(statistics.median(r[c] for r in rs), 2)
                                        for c in ("cpu_ours_s", "cpu_routers_s", "cpu_machine_s",
                                                  "softirq_machine_s")}
        if key in failed:
            out[f"{key}_error"] = failed[key]
    if summaries:
        out["ours_summary"] = summaries[-1]
    if args.dead:
        routers = [r.site for r in plan.routers if r.site != plan.province]
        dead = routers[:: max(1, round(len(routers) / max(1, round(n * 0.1))))][: max(1, round(n * 0.1))]
        try:
            for sid in dead:
                subprocess.run([CONFTOOL, "lab", "fault", sid, "--router", "--down"], check=True,
                               capture_output=True)
            out["dead_sites"] = dead
            dead_runs: list[dict[str, Any]] = []
            for _ in range(args.runs):
                with CpuMeter() as meter:
                    seconds = ours(inv, sel, plan)[0]
                dead_runs.append({"seconds": round(seconds, 3), **meter.figures})
                print(f"dead: {seconds:.2f} s (load {meter.figures['load']})", file=sys.stderr, flush=True)
            out["dead_s"] = round(statistics.median(r["seconds"] for r in dead_runs), 3)
            out["dead_runs"] = dead_runs
            out["timeout_s"] = max(d.timeout_s for s in sel.sites for d in s.routers)
        finally:
            for sid in dead:
                subprocess.run([CONFTOOL, "lab", "fault", "--clear", sid], capture_output=True)
    out["load_avg_start"] = [round(x, 1) for x in load0]
    out["load_avg_end"] = [round(x, 1) for x in os.getloadavg()]
    out["timings"] = TIMINGS
    if "nornir_s" in out:
        for key in ("ours", "ours_routers", "ours_show_only"):
            if f"{key}_s" in out:
                out[f"ratio_{key}_vs_nornir"] = round(out[f"{key}_s"] / out["nornir_s"], 3)
    for f in (5, 50):
        if f"ansible_f{f}_s" in out and "ours_cli_s" in out:  # like for like: both are processes from the shell
            out[f"speedup_vs_ansible_f{f}"] = round(out[f"ansible_f{f}_s"] / out["ours_cli_s"], 1)
        if f"ansible_raw_f{f}_s" in out and "ours_cli_s" in out:
            out[f"speedup_vs_ansible_raw_f{f}"] = round(out[f"ansible_raw_f{f}_s"] / out["ours_cli_s"], 1)
    if "dead_s" in out and "ours_s" in out:
        out["dead_within_budget"] = out["dead_s"] <= out["ours_s"] + out["timeout_s"]
    bad = (summaries[-1].get(Status.FAIL.value, 0) + summaries[-1].get(Status.ERROR.value, 0)) if summaries else 0
    out["note"] = ("ours = full audit (probes + device + drift + compliance + hosts); ours_routers = without the "
                   "hosts check; anchors = the same show commands only; cpu_routers_s = every process in the lab's "
                   "namespaces (sshd with the sessions it reaped, FRR daemons); softirq is the whole machine's"
                   + (f"; WARNING: our last run had {bad} fail/error findings" if bad else ""))
    dest = REPO / "bench" / "results" / "audit.json"
    dest.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: v for k, v in out.items() if not k.endswith("_runs") and k != "timings"}, indent=2))


if __name__ == "__main__":
    main()
