"""Benchmark: `baseline.yml` on the full lab's 129 meeting-room hosts — forks 5 vs 50 vs our default, first run
and no-change run, plus the settings that decide a 129-host run on 2 cores (forks, strategy, pipelining).

Each case runs `conftool.play.run_play` (ansible-runner → ansible-playbook over SSH into the host namespaces), the
same code path as `conftool play`, on every meeting-room host of the running lab (no projection), unless the
case names a slice (`-h<N>`, for an A/B of two settings in the same minutes).
Facts are never gathered by our playbooks (gather_facts: false), so fact caching has nothing to cache; the bench
records that instead of timing a no-op.

A "first" case needs hosts that were never baselined: when the running lab's hosts were already baselined by an
earlier case, the bench takes the lab down and up again (the hosts' private /etc is an overlay whose upper layer
lives under the state dir, so `lab down`/`lab up` gives fresh hosts). A "no-change" case runs on baselined hosts
(the bench runs a first case before it if none ran yet).

Measured per case: wall time; CPU (user+sys) of three parts, all on this machine:
  ansible_tree_cpu_s  the ansible process tree we wait for (ansible-playbook, its forks, the per-task ssh clients);
  ssh_masters_cpu_s   the SSH ControlPersist masters of the run (they daemonize out of our tree; found by their
                      ControlPath under our state dir) — plain Ansible's connections, ~0 with mitogen;
  hosts_sshd_cpu_s    the host side: the lab hosts' sshd and what it ran (module Python per task for plain
                      Ansible, one mitogen interpreter per host) — counted once the sessions ended;
machine-wide busy CPU seconds over the case (the three above plus whatever other users of the machine did
meanwhile, hence the load figures); peak summed RSS of the ansible process tree (sampled every second); the
1-minute load average at start, end and its peak.

The lab lock is held for the whole session; --max-lock-s bounds it: a case that does not fit (estimated from the
cases measured so far) is skipped and recorded as skipped, and the running case is stopped at the limit.

    python bench/play.py --cases default-first,default-nochange,m-f5-nochange [--max-lock-s 1380] [--end-by HH:MM]
Results are merged into bench/results/play.json under "full_129" (one entry per case, newest kept; a run with
failed or unreachable hosts goes to "invalid_runs", kept but not a figure).
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
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from conftool.inventory import load  # noqa: E402
from conftool.play import DEFAULT_FORKS, PlayOptions, linux_hosts, run_play  # noqa: E402
from conftool.play.runner import DEFAULT_STRATEGY  # noqa: E402

CONFTOOL = str(Path(sys.executable).parent / "conftool")
LOCK = Path("/tmp/lt-lab-tests.lock")
PLAYBOOK = REPO / "playbooks" / "baseline.yml"
CLK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
CONNECT_TIMEOUT_S = 30



def parse_case(name: str) -> tuple[str, str, dict[str, Any]]:
    """`default-first`, `default-nochange`, or `{p|m}-f<N>[-free][-nopipe][-h<N>]-{first|nochange}`:
    p = plain Ansible (strategy linear/free), m = mitogen (mitogen_linear/mitogen_free), h<N> = a slice of N hosts
    (an A/B of two settings in the same minutes, when 129 hosts of the slower one do not fit the lab time);
    returns (label, phase, overrides: PlayOptions fields plus "hosts" for a slice)."""
    parts = name.split("-")
    phase = {"first": "first", "nochange": "no-change"}.get(parts[-1])
    if phase is None:
        raise ValueError(name)
    if parts[:-1] == ["default"]:
        return (f"default (forks {DEFAULT_FORKS}, {DEFAULT_STRATEGY})", phase, {})
    kind, forks, *mods = parts[:-1]
    slice_n = [int(m[1:]) for m in mods if m.startswith("h") and m[1:].isdigit()]
    mods = [m for m in mods if not (m.startswith("h") and m[1:].isdigit())]
    if kind not in ("p", "m") or not forks.startswith("f") or not forks[1:].isdigit():
        raise ValueError(name)
    free = "free" in mods
    strategy = ("mitogen_" if kind == "m" else "") + ("free" if free else "linear")
    opts: dict[str, Any] = {"forks": int(forks[1:]), "strategy": strategy}
    if "nopipe" in mods:
        opts["pipelining"] = False
    if set(mods) - {"free", "nopipe"}:
        raise ValueError(name)
    label = f"forks {opts['forks']}, {strategy}" + (", no pipelining" if "nopipe" in mods else "")
    if slice_n:
        opts["hosts"] = slice_n[0]
        label += f", {slice_n[0]}-host slice"
    return (label, phase, opts)


def prior_walls(out: Path, n: int) -> dict[str, float]:
    """Full-run wall times of earlier sessions (bench/results/play.json "full_129"), keyed like the estimates
    ("phase/mitogen?"): without them a mitogen case after a plain one was estimated from the plain wall time
    (~3x too long) and skipped for lack of lock time."""
    try:
        cases = json.loads(out.read_text()).get("full_129", {}).get("cases", {})
    except (OSError, ValueError):
        return {}
    prior: dict[str, float] = {}
    for c in cases.values():
        if c.get("hosts") == n and not c.get("failed") and not c.get("unreachable"):
            key = f"{c['phase']}/{str(c['strategy']).startswith('mitogen')}"
            prior[key] = max(prior.get(key, 0.0), float(c["wall_s"]))
    return prior


def cli(env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CONFTOOL, *args], capture_output=True, text=True, env=env, timeout=timeout, cwd=REPO)


def tree_cpu_s() -> float:
    """CPU seconds of this process's waited-for descendants (ansible-playbook, its workers, ssh)."""
    t = os.times()
    return t.children_user + t.children_system


def machine_busy_s() -> float:
    """Busy CPU seconds of the whole machine since boot (all cores): everything but idle and iowait."""
    f = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    v = [int(x) for x in f]
    return (sum(v[:8]) - v[3] - v[4]) / CLK


def lab_sshd_cpu_s() -> float:
    """CPU seconds of the lab hosts' sshd process trees since the lab came up: the host side of a run — the
    module Python that plain Ansible starts per task, or mitogen's one interpreter per host. Sums own + reaped
    children's time over every live process under each host's sshd listener (a process's exited children are in
    its cutime/cstime, its live ones are summed separately), so sessions still open (ControlPersist) count too."""
    parent: dict[int, int] = {}
    ticks: dict[int, int] = {}
    roots: set[int] = set()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            st = Path(f"/proc/{d}/stat").read_text()
            f = st[st.rindex(")") + 2:].split()
            pid = int(d)
            parent[pid] = int(f[1])
            ticks[pid] = sum(int(x) for x in f[11:15])  # utime stime cutime cstime
            if st[st.index("(") + 1:st.rindex(")")] == "sshd" and \
                    b"lt_sshd_config" in Path(f"/proc/{d}/cmdline").read_bytes():
                roots.add(pid)
        except (OSError, ValueError):
            continue
    total = 0
    for pid, t in ticks.items():
        p, hops = pid, 0
        while p > 1 and hops < 32:
            if p in roots:
                total += t
                break
            p = parent.get(p, 0)
            hops += 1
    return total / CLK


class TreeSampler(threading.Thread):
    """Peak summed RSS of this process's descendants and the peak 1-minute load, sampled every second; also the
    CPU of the SSH ControlPersist masters of our runs (plain Ansible): they daemonize out of our process tree, so
    os.times() never counts them — they are found by their ControlPath under our state dir."""

    def __init__(self, state: Path | None = None) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.peak_rss = 0
        self.peak_load = 0.0
        self.peak_procs = 0
        self.state = str(state).encode() if state else None
        self.ssh_masters: dict[int, int] = {}  # pid -> last seen utime+stime (ticks)

    @property
    def ssh_masters_cpu_s(self) -> float:
        return sum(self.ssh_masters.values()) / CLK

    def sample(self) -> None:
        me = os.getpid()
        parent: dict[int, int] = {}
        rss: dict[int, int] = {}
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                st = Path(f"/proc/{d}/stat").read_text()
                fields = st[st.rindex(")") + 2:].split()
                parent[int(d)] = int(fields[1])
                rss[int(d)] = int(fields[21]) * PAGE
                if self.state and fields[1] == "1" and st[st.index("(") + 1:st.rindex(")")] == "ssh" \
                        and self.state in Path(f"/proc/{d}/cmdline").read_bytes():
                    self.ssh_masters[int(d)] = int(fields[11]) + int(fields[12])
            except (OSError, ValueError, IndexError):
                continue
        total, n = 0, 0
        for pid in rss:
            p, hops = pid, 0
            while p > 1 and hops < 64:
                p = parent.get(p, 0)
                hops += 1
                if p == me:
                    total += rss[pid]
                    n += 1
                    break
        self.peak_rss = max(self.peak_rss, total)
        self.peak_procs = max(self.peak_procs, n)
        self.peak_load = max(self.peak_load, os.getloadavg()[0])

    def run(self) -> None:
        while not self.stop.wait(1.0):
            self.sample()


def case(inv: Any, hosts: list[Any], state: Path, name: str, time_left: float) -> dict[str, Any]:
    label, phase, opts = parse_case(name)
    opts.pop("hosts", None)
    # connect timeout 30 s (default 10): at load 38, 11 of 129 mitogen connections timed out at 10 s (15:04 run)
    o = PlayOptions(**opts, connect_timeout_s=CONNECT_TIMEOUT_S, job_timeout_s=max(60, int(time_left)))
    load0 = os.getloadavg()
    c0, m0, l0, t0 = tree_cpu_s(), machine_busy_s(), lab_sshd_cpu_s(), time.monotonic()
    sampler = TreeSampler(state)
    sampler.start()
    try:
        rep = run_play(inv, PLAYBOOK, hosts, o, state_dir=state, lab=True)
    finally:
        sampler.stop.set()
        sampler.join()
    if rep.runner_status == "canceled":  # Ctrl-C reached ansible-runner: stop the bench (and take the lab down)
        raise KeyboardInterrupt
    wall, cpu, busy = time.monotonic() - t0, tree_cpu_s() - c0, machine_busy_s() - m0
    sampler.sample()
    lab_cpu = lab_sshd_cpu_s() - l0
    s = rep.summary()
    out: dict[str, Any] = {
        "case": label, "id": name, "phase": phase, "hosts": len(hosts), "forks": o.forks, "strategy": o.strategy,
        "pipelining": o.pipelining,
        "connect_timeout_s": o.connect_timeout_s, "runner_status": rep.runner_status, "wall_s": round(wall, 1),
        "s_per_host": round(wall / max(1, len(hosts)), 2), "ansible_tree_cpu_s": round(cpu, 1),
        "ssh_masters_cpu_s": round(sampler.ssh_masters_cpu_s, 1), "hosts_sshd_cpu_s": round(lab_cpu, 1),
        "machine_busy_cpu_s": round(busy, 1), "machine_cpu_utilisation": round(busy / wall / (os.cpu_count() or 1), 2),
        "peak_rss_mb": round(sampler.peak_rss / 2**20), "peak_processes": sampler.peak_procs,
        "load_1m": {"start": round(load0[0], 1), "peak": round(sampler.peak_load, 1),
                    "end": round(os.getloadavg()[0], 1)},
        "ok": s["ok"], "changed": s["changed"], "failed": s["failed"], "unreachable": s["unreachable"],
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if rep.errors:
        out["errors"] = rep.errors[:5]
    bad = [r for r in rep.results if r.status in ("failed", "unreachable")]
    if bad:
        out["first_failures"] = [f"{r.host}: {r.status} in {r.task!r}: {r.message}" for r in bad[:5]]
    out["slowest_tasks_s"] = sorted(rep.task_seconds, key=lambda x: -x[1])[:5]
    print(json.dumps(out, ensure_ascii=False), flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="full", choices=["full", "small"])
    ap.add_argument("--cases", default="default-first,default-nochange,m-f5-nochange",
                    help="comma list, in order: default-first, default-nochange, "
                         "{p|m}-f<N>[-free][-nopipe]-{first|nochange} (p plain Ansible, m mitogen)")
    ap.add_argument("--max-lock-s", type=float, default=1200.0, help="hold the lab lock at most this long")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "play.json"))
    ap.add_argument("--end-by", default=None, metavar="HH:MM",
                    help="UTC time by which the lab must be down (shared lab): waits for the lock only until "
                         "there is time for a case, and shortens --max-lock-s to fit")
    args = ap.parse_args()
    names = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = []
    for c in names:
        try:
            parse_case(c)
        except ValueError:
            unknown.append(c)
    if unknown:
        print(f"unknown case(s) {unknown}: see --help", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("bench/play.py needs root (the lab)", file=sys.stderr)
        return 2
    state = Path(tempfile.mkdtemp(prefix="lt-bench-play-"))
    env = {**os.environ, "LIENTHONG_STATE": str(state), "LIENTHONG_INVENTORY": str(REPO / "inventory" / "dien-bien")}
    os.environ.update({"LIENTHONG_STATE": str(state)})
    results: list[dict[str, Any]] = []
    skipped: list[str] = []
    lab_cycles: list[dict[str, float]] = []
    n = 0
    with LOCK.open("a") as lock:
        if args.end_by:
            hh, mm = (int(x) for x in args.end_by.split(":"))
            now = time.gmtime()
            end_in = (hh * 3600 + mm * 60) - (now.tm_hour * 3600 + now.tm_min * 60 + now.tm_sec)
            end_at = time.monotonic() + end_in
            while True:  # someone else's lab may be up: wait, but not past the point where nothing fits
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if end_at - time.monotonic() < 300:
                        print(f"lab lock not free in time for --end-by {args.end_by}: nothing run", file=sys.stderr)
                        return 1
                    time.sleep(5)
            args.max_lock_s = min(args.max_lock_s, end_at - time.monotonic())
            print(f"lock taken; holding it at most {args.max_lock_s:.0f} s", flush=True)
        else:
            fcntl.flock(lock, fcntl.LOCK_EX)
        t_lock = time.monotonic()
        deadline = t_lock + args.max_lock_s - 30  # leave time for `lab down`
        lab_is_up = False
        try:
            from conftool.lab import running_sites

            def lab_up() -> list[Any]:
                nonlocal lab_is_up
                t = time.monotonic()
                if lab_is_up:
                    cli(env, "lab", "down", timeout=600)
                    lab_is_up = False
                t1 = time.monotonic()
                up = cli(env, "lab", "up", "--profile", args.profile, "--json")
                if up.returncode != 0:
                    raise RuntimeError(f"lab up failed: {up.stdout[-1500:]} {up.stderr[-1500:]}")
                lab_is_up = True
                lab_cycles.append({"down_s": round(t1 - t, 1), "up_s": round(time.monotonic() - t1, 1)})
                inv = load(REPO / "inventory" / "dien-bien").select(running_sites(state) or [])
                return [inv, [h for h in linux_hosts(inv) if h[1].role.value == "meeting-endpoint"]]

            inv, rooms = lab_up()
            n = len(rooms)
            fresh_from = 0  # rooms[:fresh_from] were baselined by a first case; the rest are fresh
            walls: dict[str, float] = {}
            prior = prior_walls(Path(args.out), n)
            for name in names:
                _, phase, opts = parse_case(name)
                k = int(opts.get("hosts", n))
                need_fresh = phase == "first" and fresh_from + k > n
                mitogen = str(opts.get("strategy", DEFAULT_STRATEGY)).startswith("mitogen")
                # plain Ansible took ~4x mitogen's time on the small lab: estimate from what ran so far
                key = f"{phase}/{mitogen}"
                other = f"{'first' if phase == 'no-change' else 'no-change'}/{mitogen}"  # same strategy
                est = walls.get(key) or prior.get(key) or walls.get(other) or prior.get(other) or max(
                    walls.values(), default=0.0) * (1.3 if phase == "first" else 1.0)
                if not any(k in walls or k in prior for k in (key, other)) and not mitogen and any(
                        w.endswith("True") for w in walls):
                    est *= 4
                est *= k / max(1, n)
                est += 45 if need_fresh else 0
                left = deadline - time.monotonic()
                if est > left:
                    skipped.append(f"{name}: would not fit in the lock budget ({est:.0f} s estimated, "
                                   f"{left:.0f} s left of --max-lock-s {args.max_lock_s:.0f})")
                    print(skipped[-1], flush=True)
                    continue
                if phase == "no-change" and fresh_from < k:
                    skipped.append(f"{name}: needs baselined hosts: run a first case before it")
                    continue
                if need_fresh:
                    inv, rooms = lab_up()
                    fresh_from = 0
                hosts = rooms[fresh_from:fresh_from + k] if phase == "first" else rooms[:k]
                r = case(inv, hosts, state, name, deadline - time.monotonic())
                results.append(r)
                # estimates scale with hosts: keep the time of a full run
                walls[key] = r["wall_s"] * n / max(1, len(hosts))
                if phase == "first":
                    fresh_from += k
        finally:
            t1 = time.monotonic()
            if lab_is_up:
                cli(env, "lab", "down", timeout=600)
            lab_cycles.append({"down_s": round(time.monotonic() - t1, 1)})
            subprocess.run(["rm", "-rf", str(state)], check=False)
            print(f"lab lock held {time.monotonic() - t_lock:.0f} s", flush=True)
    out = Path(args.out)
    doc: dict[str, Any] = json.loads(out.read_text()) if out.is_file() else {"bench": "play"}
    full = doc.setdefault("full_129", {"cases": {}, "sessions": []})
    for r in results:
        if r["failed"] or r["unreachable"] or r["runner_status"] != "successful":
            full.setdefault("invalid_runs", []).append({**r, "valid": False})  # not a figure: kept, not used
        else:
            full["cases"][r["id"]] = r
    full["sessions"].append({
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "profile": args.profile,
        "meeting_room_hosts": n, "cases": [r["id"] for r in results], "skipped": skipped, "lab_cycles": lab_cycles,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_avg_at_end": [round(x, 1) for x in os.getloadavg()]},
    })
    out.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
