"""Capture REAL FRR 8.4 `show running-config` output for the normaliser/plan case tables.

Run as root on a machine with FRR installed (`python tests/render/data/capture_frr.py`). It starts ONE private
zebra+staticd in a scratch network namespace `lt-scratch-render` (veth interfaces, sockets and config under a
temporary directory, no sshd, nothing on the machine's own interfaces), feeds it rendered configs with
`vtysh -f`, applies remediation plans with `vtysh -c`, captures the output into this directory, and removes
the namespace and the processes it started (by PID) even when it fails. The tests only read the files.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from conftool.devices.plan import plan_text
from conftool.inventory import load
from conftool.render import Renderer

NS = "lt-scratch-render"
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
IFACES = ("lan0", "wan0", "tslcd0", "mgmt0")


def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=60)


@contextlib.contextmanager
def frr_instance(hostname: str, startup: str = "") -> Iterator[tuple[Path, list[str]]]:
    """A fresh zebra+staticd in the scratch namespace; yields (socket dir, vtysh base command)."""
    tmp = Path(tempfile.mkdtemp(prefix="lt-scratch-render-"))
    shutil.chown(tmp, "frr", "frr")
    tmp.chmod(0o777)
    pids: list[int] = []
    _run("ip", "netns", "add", NS)
    try:
        _run("ip", "-n", NS, "link", "set", "lo", "up")
        for i in IFACES:
            _run("ip", "-n", NS, "link", "add", i, "type", "veth", "peer", "name", f"{i}p")
            _run("ip", "-n", NS, "link", "set", i, "up")
            _run("ip", "-n", NS, "link", "set", f"{i}p", "up")
        for daemon in ("zebra", "staticd"):
            conf = tmp / f"{daemon}.conf"
            # what a lab's startup config gives each daemon ({tmp} lets a startup config name a log file here)
            conf.write_text(f"hostname {hostname}\n" + startup.replace("{tmp}", str(tmp)))
            shutil.chown(conf, "frr", "frr")
            _run("ip", "netns", "exec", NS, f"/usr/lib/frr/{daemon}", "-d", "-N", "scratch", "--vty_socket",
                 str(tmp), "-z", str(tmp / "zserv.api"), "-i", str(tmp / f"{daemon}.pid"), "-f", str(conf),
                 "-A", "127.0.0.1", "-P", "0")
            for _ in range(50):
                if (tmp / f"{daemon}.pid").exists() and (tmp / f"{daemon}.vty").exists():
                    break
                time.sleep(0.1)
            pids.append(int((tmp / f"{daemon}.pid").read_text().strip()))
        yield tmp, ["ip", "netns", "exec", NS, "vtysh", "--vty_socket", str(tmp)]
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        time.sleep(0.5)
        _run("ip", "netns", "del", NS, check=False)
        shutil.rmtree(tmp, ignore_errors=True)


def running(vtysh: list[str]) -> str:
    return _run(*vtysh, "-c", "show running-config").stdout


def load_file(vtysh: list[str], tmp: Path, text: str) -> None:
    f = tmp / "load.conf"
    f.write_text(text)
    out = _run(*vtysh, "-f", str(f), check=False)
    if out.returncode != 0:
        raise SystemExit(f"vtysh -f rejected the config: {out.stdout}{out.stderr}")


def apply(vtysh: list[str], commands: list[str]) -> None:
    args = [*vtysh, "-c", "configure terminal"]
    for c in commands:
        args += ["-c", c]
    out = _run(*args, check=False)
    if out.returncode != 0:
        raise SystemExit(f"vtysh rejected the plan: {out.stdout}{out.stderr}")


def drifted(intended: str) -> str:
    """The CPE config as an engineer's hand edits left it: a stray route, an old gateway, a changed
    description, an extra address, a missing ACL entry, a shut link, another log level, a stray interface."""
    text = intended.replace("ip route 10.11.0.0/16 172.16.0.105\n", "ip route 10.11.0.0/16 172.16.0.109\n")
    text = text.replace(" description Internet Viettel INET-11-03154\n", " description old ISP line\n")
    text = text.replace(" ip address 10.11.26.1/24\n", " ip address 10.11.26.1/24\n ip address 192.168.1.1/24\n")
    text = text.replace("access-list MGMT-SSH seq 10 deny any\n", "")
    text = text.replace(" ip address 100.64.0.106/30\n", " ip address 100.64.0.106/30\n shutdown\n")
    text = text.replace("log syslog informational\n", "log syslog warnings\n")
    text = text.replace("!\nend\n", "interface tmp0\n description leftover from a test\nexit\n!\nend\n")
    return text.replace("ip route 0.0.0.0/0", "ip route 10.99.0.0/24 172.16.0.105\nip route 0.0.0.0/0")


def main() -> None:
    inv = load(REPO / "inventory" / "dien-bien")
    r = Renderer(inv)
    cases = {"cpe": "03154", "edge": "096", "core": "11"}
    for role, sid in cases.items():
        site = inv.get(sid)
        dev = site.router
        assert dev is not None
        intended = r.render_config(site, dev)
        (HERE / f"frr_{role}_intended.conf").write_text(intended)
        with frr_instance(dev.hostname) as (tmp, vtysh):
            (HERE / f"frr_{role}_empty_running.txt").write_text(running(vtysh))
            load_file(vtysh, tmp, intended)
            (HERE / f"frr_{role}_running.txt").write_text(running(vtysh))
    site = inv.get("03154")
    dev = site.router
    assert dev is not None
    intended = r.render_config(site, dev)
    with frr_instance(dev.hostname) as (tmp, vtysh):
        load_file(vtysh, tmp, drifted(intended))
        before = running(vtysh)
        (HERE / "frr_cpe_drift_running.txt").write_text(before)
        p = plan_text(before, intended, "frr")
        (HERE / "frr_cpe_drift_plan.txt").write_text(p.text())
        apply(vtysh, p.commands)
        (HERE / "frr_cpe_drift_after_plan_running.txt").write_text(running(vtysh))
    # first deploy: a router with nothing configured gets the plan from its empty running config
    with frr_instance(dev.hostname) as (tmp, vtysh):
        before = running(vtysh)
        p = plan_text(before, intended, "frr")
        (HERE / "frr_cpe_first_plan.txt").write_text(p.text())
        apply(vtysh, p.commands)
        (HERE / "frr_cpe_first_after_plan_running.txt").write_text(running(vtysh))
    # the whole rendered file typed line by line in config mode (what a naive deploy would send)
    with frr_instance(dev.hostname) as (tmp, vtysh):
        lines = [x for x in intended.splitlines() if x.strip() and not x.startswith("!") and x != "end"]
        apply(vtysh, lines)
        (HERE / "frr_cpe_configmode_running.txt").write_text(running(vtysh))
    # a router as the lab boots it: hostname, a log file, the management interface, an empty `line vty`
    boot = ("log file {tmp}/frr.log informational\n!\ninterface mgmt0\n description management (NOC) / quan ly\n"
            " ip address 10.250.0.68/20\nexit\n!\nline vty\nexit\n")
    with frr_instance(dev.hostname, boot) as (tmp, vtysh):
        before = running(vtysh)
        (HERE / "frr_cpe_labboot_running.txt").write_text(before.replace(str(tmp), "/TMP"))
        p = plan_text(before, intended, "frr")
        (HERE / "frr_cpe_labboot_plan.txt").write_text(p.text())
        apply(vtysh, p.commands)
        (HERE / "frr_cpe_labboot_after_plan_running.txt").write_text(running(vtysh).replace(str(tmp), "/TMP"))
    print("captured into", HERE)


if __name__ == "__main__":
    main()
