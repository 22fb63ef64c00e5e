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
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import pytest

from conftool.devices.backup import BackupRepo
from conftool.devices.confirm import IOS_TIMER_SHOW, IosRevertTimer
from conftool.devices.deploy import DeployOptions, DeviceDeploy, _send
from conftool.devices.normalize import normalize
from conftool.devices.plan import plan_text
from conftool.devices.session import DeviceError, Target, connect, netmiko_params, running_config
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


@dataclass
class Emulator:
    port: int
    out: Path  # the emulator's stdout: it says when its rollback timer restored the archive


@pytest.fixture
def ios_emulator(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
                 tmp_path: Path) -> Iterator[Emulator]:
    """The emulator, with harness env knobs from `@pytest.mark.parametrize("ios_emulator", [{...}], indirect=True)`."""
    port = _free_port()
    env = {**os.environ, **getattr(request, "param", {})}
    out = tmp_path / "emulator.out"
    proc = subprocess.Popen([sys.executable, "-u", str(HARNESS), str(port), "admin", PASSWORD, "sw-ios"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
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
        pump = threading.Thread(target=_copy_lines, args=(proc.stdout, out), daemon=True)
        pump.start()
        yield Emulator(port, out)
    finally:
        proc.kill()
        proc.wait(timeout=10)


def _copy_lines(src: Any, dst: Path) -> None:
    with dst.open("a") as f:
        for line in src:
            f.write(line)
            f.flush()


@pytest.fixture
def ios(ios_emulator: Emulator) -> int:
    return ios_emulator.port


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
    assert "no commit-confirm" not in res.detail
    log1 = (tmp_path / "logs1" / "sw-ios.log").read_text(errors="replace")
    # Armed before the first config line, confirmed (over a new login, not in this session log) before saving.
    assert log1.index("configure terminal revert timer 1") < log1.index("interface Vlan10")
    assert "commit-confirm" not in (res.error or "")
    assert any(c.startswith("interface Vlan10") for c in res.commands)
    assert repo.read("03124", "sw-ios") is not None  # the pre-change backup was taken

    conn = connect(inv, target)
    try:
        running = running_config(conn, "cisco_ios")
        timer = conn.send_command(IOS_TIMER_SHOW)
    finally:
        conn.disconnect()
    assert "ip address 10.11.27.1 255.255.255.0" in running and "name MEETING" in running
    assert "No Rollback Confirmed Change pending" in timer  # the deploy confirmed: the timer is stopped

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
        timer = conn.send_command(IOS_TIMER_SHOW)
    finally:
        conn.disconnect()
    assert normalize(after, "cisco_ios") == normalize(before, "cisco_ios")
    log = (tmp_path / "l" / "sw-ios.log").read_text(errors="replace")
    assert "configure terminal revert timer 1" in log  # it was armed before the change...
    assert "configure confirm" in log  # ...and, the backup restored by deploy, stopped (no second rollback)
    assert "No Rollback Confirmed Change pending" in timer


def _running(inv: Inventory, target: Target) -> tuple[str, str]:
    conn = connect(inv, target)
    try:
        return running_config(conn, "cisco_ios"), str(conn.send_command(IOS_TIMER_SHOW))
    finally:
        conn.disconnect()


@pytest.mark.parametrize("ios_emulator", [{"FAKE_IOS_MINUTE_S": "2"}], indirect=True)
def test_revert_timer_not_confirmed_restores_the_archive(ios_emulator: Emulator, tmp_path: Path) -> None:
    """Armed, changed, never confirmed: the device itself goes back to the config it had when armed."""
    inv, target = _inventory(ios_emulator.port)
    conn = connect(inv, target)
    try:
        before = running_config(conn, "cisco_ios")
        guard = IosRevertTimer(netmiko_params(inv, target), conn)
        guard.arm(45, before)
        assert guard.minutes == 1 and guard.window_s == 60  # IOS counts whole minutes: 45 s rounds up
        assert guard.state() == "pending"
        _send(conn, plan_text(before, INTENDED, "cisco_ios").commands)
        changed = running_config(conn, "cisco_ios")
    finally:
        conn.disconnect()
    assert "name MEETING" in changed and "name MEETING" not in before
    deadline = time.monotonic() + 15  # one emulated minute is 2 s
    while "archive restored" not in ios_emulator.out.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    after, timer = _running(inv, target)
    assert "archive restored" in ios_emulator.out.read_text()
    assert normalize(after, "cisco_ios") == normalize(before, "cisco_ios")
    assert "No Rollback Confirmed Change pending" in timer


@pytest.mark.parametrize("ios_emulator", [{"FAKE_IOS_MINUTE_S": "2"}], indirect=True)
def test_confirm_stops_the_timer(ios_emulator: Emulator, tmp_path: Path) -> None:
    """Armed, changed, confirmed over a new login: the change stays after the window is over."""
    inv, target = _inventory(ios_emulator.port)
    conn = connect(inv, target)
    try:
        before = running_config(conn, "cisco_ios")
        guard = IosRevertTimer(netmiko_params(inv, target), conn)
        guard.arm(30, before)
        _send(conn, plan_text(before, INTENDED, "cisco_ios").commands)
        guard.confirm_over_new_session()
        assert guard.state() == "idle"
        with pytest.raises(DeviceError, match="window over"):
            guard.confirm_over_new_session()  # nothing pending any more: a confirm cannot be faked
    finally:
        conn.disconnect()
    time.sleep(3)  # past the emulated minute
    after, _ = _running(inv, target)
    assert "archive restored" not in ios_emulator.out.read_text()
    assert normalize(after, "cisco_ios") == normalize(INTENDED, "cisco_ios")


@pytest.mark.parametrize("ios_emulator", [{"FAKE_IOS_MINUTE_S": "0.3"}], indirect=True)
def test_deploy_whose_window_closes_before_the_confirm_is_rolled_back(ios_emulator: Emulator,
                                                                       tmp_path: Path) -> None:
    """The window (0.3 s here) closes during apply/verify: the device reverts, deploy must not confirm or save."""
    inv, target = _inventory(ios_emulator.port)
    before, _ = _running(inv, target)
    res = DeviceDeploy(inv, target, INTENDED, DeployOptions(dry_run=False, log_dir=tmp_path / "l")).run()
    assert res.status == "rolled_back", res.detail
    assert "archive restored" in ios_emulator.out.read_text()
    after, timer = _running(inv, target)
    assert normalize(after, "cisco_ios") == normalize(before, "cisco_ios")
    assert "No Rollback Confirmed Change pending" in timer
    assert "write memory" not in (tmp_path / "l" / "sw-ios.log").read_text(errors="replace")


@pytest.mark.parametrize("ios_emulator", [{"FAKE_IOS_ARCHIVE": "0"}], indirect=True)
def test_device_without_archive_deploys_unguarded_and_says_so(ios_emulator: Emulator, tmp_path: Path) -> None:
    inv, target = _inventory(ios_emulator.port)
    res = DeviceDeploy(inv, target, INTENDED, DeployOptions(dry_run=False, log_dir=tmp_path / "l")).run()
    assert res.status == "changed", res.detail + (res.error or "")
    assert "no commit-confirm: no rollback timer on the device" in res.detail  # said plainly, not pretended


def test_unreachable_and_secret_not_leaked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LT_IOS_PW", PASSWORD)
    monkeypatch.setenv("LT_IOS_ENABLE", "")
    inv, target = _inventory(_free_port())  # nobody listens there
    res = DeviceDeploy(inv, target, INTENDED, DeployOptions(dry_run=False)).run()
    assert res.status == "unreachable"
    assert PASSWORD not in (res.detail + (res.error or ""))
    assert os.environ["LT_IOS_PW"] == PASSWORD
