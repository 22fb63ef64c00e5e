"""Lab hosts (meeting-room PCs, the province server): private /etc over the machine's, sshd with key login,
on the site LAN and the management network, shown by status, reachable by `lab exec`."""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.lab.fixtures import LabSession

pytestmark = pytest.mark.lab

PC, PC_MGMT, PC_LAN = "pc-noong-bua", "10.250.0.39", "10.11.11.10"
SRV, SRV_MGMT = "srv-dien-bien", "10.250.0.17"
SMALL_HOSTS = {"srv-dien-bien", "pc-noong-bua", "pc-him-lam", "pc-song-da", "pc-na-lay"}


def ssh(lab: LabSession, user: str, address: str, command: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ssh", "-i", str(lab.key), "-o", "BatchMode=yes", "-o", "UserKnownHostsFile=/dev/null",
         "-o", "StrictHostKeyChecking=no", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=5", *extra,
         f"{user}@{address}", command], capture_output=True, text=True, timeout=30)


def test_status_lists_every_host(lab: LabSession) -> None:
    doc = lab.status()
    hosts = {n["hostname"]: n for n in doc["nodes"] if n["role"] == "host"}
    assert set(hosts) == SMALL_HOSTS
    assert all(n["up"] and n["daemons"] == {"sshd": True} for n in hosts.values())
    assert hosts[PC]["mgmt_address"] == PC_MGMT and hosts[PC]["address"] == f"{PC_LAN}/24"
    assert hosts[SRV]["device_role"] == "server" and hosts[PC]["device_role"] == "meeting-endpoint"


def test_private_etc_takes_a_change_the_machine_does_not(lab: LabSession) -> None:
    machine_issue = Path("/etc/issue").read_bytes()
    marker = f"lab-host-{uuid.uuid4().hex[:8]}"
    probe = Path(f"/etc/lt-test-{marker}")
    cp = lab.exec(PC, "sh", "-c", f"echo {marker} > /etc/issue && echo {marker} > {probe} && cat /etc/issue {probe}")
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.split() == [marker, marker]
    # The machine's /etc is untouched: same content, no new file.
    assert Path("/etc/issue").read_bytes() == machine_issue
    assert not probe.exists()
    # The change lives in the host's upper layer under the lab's state dir, and is seen again on a new entry.
    upper = lab.state / "lab" / "hosts" / PC / "etc.up"
    assert (upper / "issue").read_text().strip() == marker
    assert lab.exec(PC, "cat", "/etc/issue").stdout.strip() == marker
    # Another host does not see it.
    assert lab.exec(SRV, "cat", "/etc/issue").stdout.encode() == machine_issue


def test_private_var_run_tmp(lab: LabSession, tmp_path: Path) -> None:
    (tmp_path / "machine-only").write_text("x")
    cp = lab.exec(PC, "sh", "-c", f"ls {tmp_path} 2>&1; touch /var/lt-probe /opt/lt-probe /tmp/lt-probe; "
                                  "ls /run/sshd.pid /var/lt-probe /opt/lt-probe /tmp/lt-probe")
    assert "machine-only" not in cp.stdout  # /tmp is the host's own, empty at start
    assert cp.returncode == 0, cp.stdout + cp.stderr
    for p in ("/var/lt-probe", "/opt/lt-probe", "/tmp/lt-probe"):
        assert not Path(p).exists()
    assert lab.exec(PC, "hostname").stdout.strip() == PC


def test_ssh_key_login_root_and_automation_user(lab: LabSession, tmp_path: Path) -> None:
    for user in ("root", "netops"):
        cp = ssh(lab, user, PC_MGMT, "id -un; hostname; python3 -c 'import sys; print(sys.version_info[0])'")
        assert cp.returncode == 0, cp.stderr
        assert cp.stdout.split() == [user, PC, "3"]
    # Another key: refused (and no password login to fall back on).
    other = tmp_path / "other_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    cp = subprocess.run(["ssh", "-i", str(other), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                         "-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "LogLevel=ERROR",
                         f"root@{PC_MGMT}", "true"], capture_output=True, text=True, timeout=30)
    assert cp.returncode == 255 and "Permission denied" in cp.stderr
    # SFTP works (Ansible copies files with it).
    sftp = subprocess.run(["sftp", "-i", str(lab.key), "-o", "BatchMode=yes", "-o", "UserKnownHostsFile=/dev/null",
                           "-o", "StrictHostKeyChecking=no", "-o", "LogLevel=ERROR", f"root@{SRV_MGMT}"],
                          input="ls /etc/hostname\n", capture_output=True, text=True, timeout=30)
    assert sftp.returncode == 0 and "/etc/hostname" in sftp.stdout, sftp.stderr


def test_host_is_on_the_site_lan(lab: LabSession) -> None:
    """The router's LAN gets its address (as deploy would); the host then reaches its gateway."""
    cp = lab.exec("03124", "vtysh", "-c", "configure terminal", "-c", "interface lan0",
                  "-c", "ip address 10.11.11.1/24")
    assert cp.returncode == 0, cp.stdout + cp.stderr
    route = lab.exec(PC, "ip", "route", "show", "default").stdout
    assert "via 10.11.11.1 dev eth0" in route
    for _ in range(20):
        if lab.exec(PC, "ping", "-c", "1", "-W", "1", "10.11.11.1").returncode == 0:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the room PC cannot reach its router's LAN address")
    assert lab.exec("03124", "ping", "-c", "1", "-W", "1", PC_LAN).returncode == 0


def test_router_fault_does_not_touch_hosts_but_lan_link_down_cuts_them(lab: LabSession) -> None:
    lab.cli("lab", "fault", "03124", "--link", "lan", "--down", check=True)
    try:
        assert lab.exec("03124", "ping", "-c", "1", "-W", "1", PC_LAN).returncode != 0
        assert ssh(lab, "root", PC_MGMT, "true").returncode == 0  # management stays: a separate network
    finally:
        lab.cli("lab", "fault", "03124", "--link", "lan", "--up", check=True)


def test_exec_unknown_node_is_exit_2(lab: LabSession) -> None:
    cp = lab.exec("pc-nowhere", "true")
    assert cp.returncode == 2
    assert "pc-nowhere" in (cp.stdout + cp.stderr)


def test_host_resolves_the_room_agent_from_the_wheelhouse(lab: LabSession) -> None:
    """Hosts reach no index: our package and every dependency resolve from the local wheelhouse alone."""
    wheelhouse = Path(__file__).resolve().parents[2] / ".wheelhouse"
    if not any(wheelhouse.glob("lienthong-*.whl")):
        pytest.skip("no wheelhouse: run scripts/install.d/40-wheelhouse.sh")
    cp = lab.exec(PC, "/usr/bin/python3", "-m", "pip", "install", "--dry-run", "--ignore-installed", "--no-index",
                  "--target", "/tmp/agent",
                  "--find-links", str(wheelhouse), "lienthong", timeout=180)
    assert cp.returncode == 0, cp.stdout[-2000:] + cp.stderr[-2000:]
    assert "Would install" in cp.stdout and "lienthong-0" in cp.stdout and "aiortc" in cp.stdout
