"""FRRouting per router: a private /etc/frr, a bootstrap config that holds only what management needs."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from conftool.lab.plan import MGMT_IF, RouterPlan

logger = logging.getLogger(__name__)

FRR_LIB = Path("/usr/lib/frr")
VTYSH = Path("/usr/bin/vtysh")
# The daemons each router runs. Templates use static routing today; add "ospfd"/"bgpd" here when they need it.
DAEMONS: tuple[str, ...] = ("zebra", "staticd")
LIMIT_FDS = 256
# zebra's API socket for its client daemons (FRR's default name, in the instance's run directory)
ZSERV_SOCKET = "zserv.api"


def bootstrap_config(r: RouterPlan) -> str:
    """Hostname, management address, integrated config — nothing else; `conftool deploy` brings the rest.

    The management lines are the same the templates render, so a deploy never cuts the NOC off.
    """
    return "\n".join([
        "frr defaults traditional",
        f"hostname {r.hostname}",
        "log file /var/log/frr/frr.log informational",
        "service integrated-vtysh-config",
        "ip forwarding",
        # From zebra's start, as the templates render it: routes without kernel nexthop objects, which zebra 8.4
        # does not always reinstall after a link flap (FRRouting/frr#14160).
        "no zebra nexthop kernel enable",
        "!",
        f"interface {MGMT_IF}",
        " description Management NOC - kept by every deploy",  # as templates/_macros/ios.j2 renders it
        f" ip address {r.mgmt_address}/{r.mgmt_prefixlen}",
        "exit",
        "!",
        "line vty",
        "exit",
        "!",
        "",
    ])


def prepare(router_dir: Path, r: RouterPlan, uid: int, gid_vty: int) -> None:
    """Write the router's private /etc/frr and /run/frr.

    The daemons run with `-N <instance>`; inside the router `/etc/frr/<instance>` and `/run/frr/<instance>` are
    symlinks to their parent, so `vtysh -N <instance>` and a plain `vtysh` reach the same daemons and save the
    same frr.conf (the router's mount namespace is the isolation; the pathspace keeps FRR's own conventions).
    """
    etc = router_dir / "etc-frr"
    run_frr = router_dir / "run" / "frr"
    logs = router_dir / "log" / "frr"
    for d in (etc, run_frr, logs):
        d.mkdir(parents=True, exist_ok=True)
    (etc / "frr.conf").write_text(bootstrap_config(r))
    (etc / "vtysh.conf").write_text("service integrated-vtysh-config\n")
    for d in (etc, run_frr):
        link = d / r.instance
        if not link.is_symlink():
            link.symlink_to(".")
    # frr owns its trees; the vtysh group (frrvty, which the automation user joins) may save the config.
    os.chown(etc, uid, gid_vty)
    etc.chmod(0o2775)
    for f in (etc / "frr.conf", etc / "vtysh.conf"):
        os.chown(f, uid, gid_vty)
        f.chmod(0o664)
    for d in (run_frr, logs):
        os.chown(d, uid, gid_vty)
        d.chmod(0o775)


def daemon_argv(name: str, r: RouterPlan) -> list[str]:
    """Foreground daemon (its PID is the one we record), no TCP vty port, own pathspace."""
    # --limit-fds: FRR sizes its per-fd tables from `ulimit -n`; a lab router needs a few dozen fds, and the
    # smaller tables save ~2.5 MB per router (bench/lab.py: 140 routers).
    return [str(FRR_LIB / name), "-N", r.instance, "-A", "127.0.0.1", "-P", "0", "-u", "frr", "-g", "frr",
            "--limit-fds", str(LIMIT_FDS)]


def vty_sockets(router_dir: Path, r: RouterPlan, daemons: tuple[str, ...] = DAEMONS) -> list[Path]:
    base = router_dir / "run" / "frr"
    return [base / f"{d}.vty" for d in daemons]


def missing_binaries(daemons: tuple[str, ...] = DAEMONS) -> list[str]:
    wanted = [FRR_LIB / d for d in daemons] + [VTYSH]
    return [str(p) for p in wanted if not p.exists()] + ([] if shutil.which("nsenter") else ["nsenter"])
