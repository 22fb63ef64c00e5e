"""The cisco_ios deploy engine against an emulated IOS CLI (fake-switches) on 127.0.0.1.

Covers connect (password from an env: reference), backup, remediation, apply, verify, write memory, the
"unchanged sends nothing" rule and rollback after a rejected line — on the subset of IOS the emulator understands
(VLANs, VLAN interfaces with addresses, descriptions). The rest of the cisco_ios templates is covered only by the
golden files in tests/render.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from ipaddress import IPv4Network
from pathlib import Path

import pytest

from conftool.devices.backup import BackupRepo
from conftool.devices.deploy import DeployOptions, DeviceDeploy
from conftool.devices.session import Target, connect, running_config
from conftool.inventory import Device, Inventory, InventoryData, Level, ProvinceMeta, Role, Services, Site

HARNESS = Path(__file__).with_name("fake_ios.py")
PASSWORD = "ios-test-pw-7781"  # the emulator's login password, handed over through an env: reference

INTENDED = """\
hostname sw-ios
!
vlan 10
 name LAN-XA
!
vlan 20
 name MEETING
!
interface FastEthernet0/1
!
interface FastEthernet0/2
!
interface FastEthernet0/3
!
interface Vlan10
 description LAN xa Noong Bua
 ip address 10.11.26.1 255.255.255.0
!
interface Vlan20
 description Phong hop
 ip address 10.11.27.1 255.255.255.0
!
end
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def ios(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, str(HARNESS), str(port), "admin", PASSWORD, "sw-ios"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if "ready" not in line:
            proc.kill()
            rest = proc.stdout.read()
            pytest.fail(f"IOS emulator did not start (is fake-switches installed by "
                        f"scripts/install.d/20-ios-emulator.sh?):\n{line}{rest}")
        for _ in range(50):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        monkeypatch.setenv("LT_IOS_PW", PASSWORD)
        monkeypatch.setenv("LT_IOS_ENABLE", "")  # the emulator only accepts an empty enable secret
        yield port
    finally:
        proc.kill()
        proc.wait(timeout=10)


def _inventory(port: int) -> tuple[Inventory, Target]:
    dev = Device(hostname="sw-ios", platform="cisco_ios", role=Role.CPE, mgmt_address="127.0.0.1", port=port,
                 username="admin", credentials="env:LT_IOS_PW", timeout_s=15,
                 enable_credentials="env:LT_IOS_ENABLE")
    site = Site(id="03124", name="Noong Bua", slug="noong-bua", level=Level.COMMUNE, parent="11", devices=[dev])
    data = InventoryData(
        province=ProvinceMeta(id="11", name="Điện Biên", slug="dien-bien"),
        services=Services(noc_prefix=IPv4Network("127.0.0.0/28"), mgmt_prefix=IPv4Network("127.0.0.0/8"),
                          soc_syslog="10.11.0.10", ntp=["10.11.0.11"], dns=["10.11.0.12"]),
        sites=[site])
    return Inventory(data), Target(site, dev)


def _config_lines(log: Path) -> list[str]:
    text = log.read_text(errors="replace") if log.exists() else ""
    return [ln for ln in text.splitlines() if "(config" in ln]


def test_apply_verify_save_then_unchanged_sends_nothing(ios: int, tmp_path: Path) -> None:
    inv, target = _inventory(ios)
    repo = BackupRepo(tmp_path / "backups")
    opts = DeployOptions(dry_run=False, log_dir=tmp_path / "logs1", backups=repo)
    res = DeviceDeploy(inv, target, INTENDED, opts).run()
    assert res.status == "changed", res.detail + (res.error or "")
    assert "no commit-confirm" in res.detail  # said plainly, not pretended
    assert any(c.startswith("interface Vlan10") for c in res.commands)
    assert repo.read("03124", "sw-ios") is not None  # the pre-change backup was taken

    conn = connect(inv, target)
    try:
        running = running_config(conn, "cisco_ios")
    finally:
        conn.disconnect()
    assert "ip address 10.11.27.1 255.255.255.0" in running and "name MEETING" in running

    opts2 = DeployOptions(dry_run=False, log_dir=tmp_path / "logs2")
    again = DeviceDeploy(inv, target, INTENDED, opts2).run()
    assert again.status == "unchanged", again.detail
    log = tmp_path / "logs2" / "sw-ios.log"
    assert log.exists() and "show running-config" in log.read_text(errors="replace")
    assert _config_lines(log) == [], "an unchanged device must receive no config command"


def test_rejected_line_rolls_back_to_backup(ios: int, tmp_path: Path) -> None:
    inv, target = _inventory(ios)
    conn = connect(inv, target)
    try:
        before = running_config(conn, "cisco_ios")
    finally:
        conn.disconnect()
    bad = INTENDED.replace("!\nend", "!\nsnmp-server community wrong-ro RO\n!\nend")
    res = DeviceDeploy(inv, target, bad, DeployOptions(dry_run=False, log_dir=tmp_path / "l")).run()
    assert res.status == "rolled_back", res.detail
    assert "Invalid input" in res.detail
    conn = connect(inv, target)
    try:
        after = running_config(conn, "cisco_ios")
    finally:
        conn.disconnect()
    from conftool.devices.normalize import normalize

    assert normalize(after, "cisco_ios") == normalize(before, "cisco_ios")


def test_unreachable_and_secret_not_leaked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LT_IOS_PW", PASSWORD)
    monkeypatch.setenv("LT_IOS_ENABLE", "")
    inv, target = _inventory(_free_port())  # nobody listens there
    res = DeviceDeploy(inv, target, INTENDED, DeployOptions(dry_run=False)).run()
    assert res.status == "unreachable"
    assert PASSWORD not in (res.detail + (res.error or ""))
    assert os.environ["LT_IOS_PW"] == PASSWORD
