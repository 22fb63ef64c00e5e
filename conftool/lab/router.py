"""One emulated router: a network namespace, a private mount + UTS namespace held by an anchor process,
FRR daemons and an sshd started inside them.

The anchor (`sleep infinity` after the mounts) keeps the mount namespace alive while daemons stop and start
(router down/up, sshd down/up); its mounts never reach the machine's mount table.
"""

from __future__ import annotations

import logging
import shlex
from pathlib import Path

from conftool.lab import frr, sshd
from conftool.lab.netns import ip_batch, pids_in_netns, run
from conftool.lab.plan import MGMT_IF, RouterPlan
from conftool.lab.procs import Recorder, kill_pids, stop, wait_for
from conftool.lab.state import LabState

logger = logging.getLogger(__name__)

READY = ".anchor-ready"
START_TIMEOUT = 30.0
# Paths bound over the machine's inside the router's mount namespace: (file in the router dir, target).
BINDS = (("run", "/run"), ("etc-frr", "/etc/frr"), ("log", "/var/log"), ("passwd", "/etc/passwd"),
         ("group", "/etc/group"), ("shadow", "/etc/shadow"), ("pam-frr", "/etc/pam.d/frr"))


def router_dir(lab_dir: Path, r: RouterPlan) -> Path:
    return lab_dir / "routers" / r.site


def anchor_script(rdir: Path, r: RouterPlan) -> str:
    q = shlex.quote
    lines = ["set -e"]
    for src, target in BINDS:
        lines.append(f"[ -e {q(target)} ] && mount --bind {q(str(rdir / src))} {q(target)}")
    lines += [
        f"hostname {q(r.hostname)}",
        "echo 1 > /proc/sys/net/ipv4/ip_forward",
        f"touch /run/{READY}",
        "exec sleep infinity",
    ]
    return "\n".join(lines) + "\n"


def prepare(lab_dir: Path, r: RouterPlan, ident: sshd.Identity, host_key: Path, pubkey: str) -> Path:
    rdir = router_dir(lab_dir, r)
    (rdir / "run").mkdir(parents=True, exist_ok=True)
    (rdir / "run").chmod(0o755)
    (rdir / "log").mkdir(parents=True, exist_ok=True)
    frr.prepare(rdir, r, ident.frr_uid, ident.vty_gid)
    sshd.prepare(rdir, r, ident, host_key, pubkey)
    (rdir / "anchor.sh").write_text(anchor_script(rdir, r))
    return rdir


def enter_argv(state: LabState, r: RouterPlan) -> list[str]:
    """Prefix that runs a command inside the router (its anchor holds the router's namespaces)."""
    return state.enter_argv(r.site, "anchor", f"router {r.site} ({r.hostname})")


def start_anchor(rec: Recorder, lab_dir: Path, r: RouterPlan) -> None:
    rdir = router_dir(lab_dir, r)
    log = rdir / "log" / "anchor.out"
    rec.spawn(["ip", "netns", "exec", r.namespace, "unshare", "--uts", "--", "sh", str(rdir / "anchor.sh")],
              log, "anchor", r.site)
    wait_for(lambda: (rdir / "run" / READY).exists(), START_TIMEOUT, f"router {r.site} namespace setup", log)


def start_frr(rec: Recorder, lab_dir: Path, r: RouterPlan, daemons: tuple[str, ...] = frr.DAEMONS) -> None:
    """Start the FRR daemons, wait for their vty sockets, then load the saved config with `vtysh -b`."""
    rdir = router_dir(lab_dir, r)
    enter = enter_argv(rec.state, r)
    run_frr = rdir / "run" / "frr"
    for d in daemons:
        (run_frr / f"{d}.vty").unlink(missing_ok=True)
    (run_frr / frr.ZSERV_SOCKET).unlink(missing_ok=True)
    # zebra first, and its zserv socket listening, before any client daemon: a client (staticd) whose first
    # connect fails retries only after 10 s (lib/zclient.c), so every static route would wait that long.
    for d in daemons:
        rec.spawn(enter + frr.daemon_argv(d, r), rdir / "log" / f"{d}.out", d, r.site)
        if d == "zebra":  # zebra makes its vty socket after the zserv one is listening (zebra/main.c)
            wait_for(lambda: (run_frr / frr.ZSERV_SOCKET).exists() and (run_frr / "zebra.vty").exists(),
                     START_TIMEOUT, f"router {r.site} zebra start", rdir / "log" / "zebra.out")
    for sock in frr.vty_sockets(rdir, r, daemons):
        wait_for(sock.exists, START_TIMEOUT, f"router {r.site} {sock.stem} start", rdir / "log" / f"{sock.stem}.out")
    cp = run([*enter, str(frr.VTYSH), "-N", r.instance, "-b"], check=False)
    if cp.returncode != 0:
        logger.warning("router %s: vtysh -b reported problems loading its config: %s", r.site,
                       (cp.stdout + cp.stderr).strip()[-500:])


def start_sshd(rec: Recorder, lab_dir: Path, r: RouterPlan) -> None:
    rdir = router_dir(lab_dir, r)
    rec.spawn(enter_argv(rec.state, r) + sshd.argv(), rdir / "log" / "sshd.out", "sshd", r.site)
    wait_for(lambda: sshd.listening(r.mgmt_address), START_TIMEOUT, f"router {r.site} sshd on {r.mgmt_address}:22",
             rdir / "log" / "sshd.log")


def start(rec: Recorder, lab_dir: Path, r: RouterPlan) -> None:
    start_anchor(rec, lab_dir, r)
    start_frr(rec, lab_dir, r)
    start_sshd(rec, lab_dir, r)


def stop_sshd(state: LabState, r: RouterPlan) -> None:
    rec = state.proc(r.site, "sshd")
    if rec is not None:
        stop([rec])


def stop_all_but_anchor(state: LabState, r: RouterPlan) -> None:
    """Router down: every process in the router (daemons, SSH sessions, stray commands) but its anchor."""
    anchor = state.proc(r.site, "anchor")
    keep = anchor.pid if anchor is not None else -1
    kill_pids([pid for pid in pids_in_netns([r.namespace]) if pid != keep])


def set_links(r: RouterPlan, up: bool, interfaces: list[str] | None = None) -> None:
    names = interfaces if interfaces is not None else [MGMT_IF, *(lk.interface for lk in r.links)]
    ip_batch([f"link set {n} {'up' if up else 'down'}" for n in names], r.namespace)
