"""The audit daemon: cron runs on an injected clock, alerts to a real SMTP server and a real HTTP receiver,
coalesced missed runs, a crash-proof loop, and a clean stop on SIGTERM of the real CLI process."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from conftool.audit.alerts import Alerter, make_channel
from conftool.audit.errors import AuditError
from conftool.audit.results import RunRecord, Status
from conftool.audit.schedule import AuditJob, Scheduler, Tick, cron_to_oncalendar
from conftool.audit.store import AuditStore
from conftool.inventory import Inventory
from tests.audit_ops.conftest import FakeClock, Mailbox, Receiver, make_run

CONFTOOL = str(Path(sys.executable).parent / "conftool")
START = datetime(2026, 11, 22, 0, 0, 30, tzinfo=UTC)  # 07:00:30 in Điện Biên; "0 */4" local fires at 01, 05 … UTC
DOWN = ("03154", "dedicated")


def test_two_runs_alert_then_recovery(tmp_path: Path, inv: Inventory, smtp_server: Mailbox,
                                      http_receiver: Receiver) -> None:
    clock = FakeClock(START)
    faults: dict[tuple[str, str], Status] = {}
    with AuditStore(f"sqlite:///{tmp_path / 'a.db'}") as st:
        channels = [make_channel(smtp_server.url, sender="lienthong@localhost"),
                    make_channel(http_receiver.url, sender="lienthong@localhost")]
        alerter = Alerter(st.engine, inv, channels, noc=["noc@dienbien.gov.vn"], consecutive=1)
        job = AuditJob(audit=lambda: make_run(clock.now(), dict(faults)), save=st.save, alert=alerter.process,
                       clock=clock)
        sched = Scheduler("0 */4 * * *", job, clock=clock)
        stop = threading.Event()
        sched.run(stop, max_runs=1)
        assert smtp_server.messages == [] and http_receiver.posts == []
        faults[DOWN] = Status.FAIL  # the fault appears between the runs
        sched.run(stop, max_runs=2)
        assert len(http_receiver.posts) == 1
        noc = [m for m in smtp_server.messages if m["To"] == "noc@dienbien.gov.vn"]
        site = [m for m in smtp_server.messages if m["To"] == "cntt.sin-thau@dienbien.gov.vn"]
        assert len(noc) == 1 and len(site) == 1 and len(smtp_server.messages) == 2
        body = noc[0].get_content()
        assert "LỖI MỚI (1)" in body and "Xã Sín Thầu (03154) — mạng TSLCD" in body
        assert noc[0]["Subject"] == f"[Liên Thông] 1 lỗi mới — lần kiểm tra {sched.ticks[1].run_id}"
        sched.run(stop, max_runs=3)  # still down: nothing new
        assert len(smtp_server.messages) == 2 and len(http_receiver.posts) == 1
        del faults[DOWN]
        sched.run(stop, max_runs=5)  # recovery, then an unchanged run
        assert [p["events"][0]["change"] for p in http_receiver.posts] == ["failure", "recovery"]
        assert len(smtp_server.messages) == 4
        assert "ĐÃ PHỤC HỒI (1)" in smtp_server.messages[2].get_content()
    fired = [t.fire_time for t in sched.ticks]
    assert fired[0] == datetime(2026, 11, 22, 1, 0, tzinfo=UTC)
    assert all(b - a == timedelta(hours=4) for a, b in itertools.pairwise(fired))
    assert clock.now() - START < timedelta(hours=18)  # simulated, not waited


def test_overrun_is_coalesced_and_a_crash_does_not_stop(inv: Inventory) -> None:
    clock = FakeClock(START)
    calls: list[datetime] = []

    def job(fire: datetime) -> Tick:
        calls.append(fire)
        if len(calls) == 1:
            clock.advance(hours=9)  # a run that overran the next two fire times
        if len(calls) == 2:
            raise RuntimeError("audit blew up")
        return Tick(fire, clock.now())

    sched = Scheduler("0 */4 * * *", job, clock=clock)
    ticks = sched.run(threading.Event(), max_runs=3)
    assert ticks[0].coalesced == 2
    assert calls[1] == datetime(2026, 11, 22, 13, 0, tzinfo=UTC)  # 05:00 and 09:00 were folded into one
    assert not ticks[1].ok and ticks[1].error == "RuntimeError: audit blew up"
    assert ticks[2].ok and calls[2] == datetime(2026, 11, 22, 17, 0, tzinfo=UTC)


def test_missed_while_down_runs_once_at_start() -> None:
    clock = FakeClock(START)
    sched = Scheduler("0 */4 * * *", lambda f: Tick(f, clock.now()), clock=clock,
                      last_run_at=START - timedelta(hours=10))
    assert sched.plan() == START  # a fire time passed while we were down: catch up now
    fresh = Scheduler("0 */4 * * *", lambda f: Tick(f, clock.now()), clock=clock,
                      last_run_at=START - timedelta(hours=1))
    assert fresh.plan() == datetime(2026, 11, 22, 1, 0, tzinfo=UTC)


def test_audit_failure_is_logged_not_fatal(tmp_path: Path, inv: Inventory) -> None:
    def broken() -> RunRecord:
        raise AuditError("no lab is running")

    with AuditStore(f"sqlite:///{tmp_path / 'a.db'}") as st:
        tick = AuditJob(audit=broken, save=st.save, clock=FakeClock(START))(START)
    assert not tick.ok and tick.error == "AuditError: no lab is running" and tick.run_id is None
    assert tick.expected_error


def test_bad_cron_is_a_usage_error(state_dir: Path) -> None:
    p = subprocess.run([CONFTOOL, "audit", "schedule", "--cron", "every hour"], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 2 and "--cron 'every hour'" in p.stderr and "Traceback" not in p.stderr


def test_print_systemd(state_dir: Path) -> None:
    p = subprocess.run([CONFTOOL, "audit", "schedule", "--cron", "0 */4 * * *", "--alert",
                        "smtp://noc@127.0.0.1:25", "--smtp-password", "env:SMTP_PASSWORD", "--print-systemd"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "OnCalendar=*-*-* 00/4:00:00 Asia/Ho_Chi_Minh" in p.stdout and "Persistent=true" in p.stdout
    assert "audit schedule --once --alert smtp://noc@127.0.0.1:25 --smtp-password env:SMTP_PASSWORD" in p.stdout
    if shutil.which("systemd-analyze"):
        cal = subprocess.run(["systemd-analyze", "calendar", cron_to_oncalendar("0 */4 * * *")],
                             capture_output=True, text=True, timeout=30)
        assert cal.returncode == 0, cal.stderr


def test_sigterm_stops_mid_wait(tmp_path: Path, state_dir: Path, reference_inventory: Path,
                                http_receiver: Receiver) -> None:
    env = {**os.environ, "LIENTHONG_DB": f"sqlite:///{tmp_path / 'a.db'}",
           "LIENTHONG_INVENTORY": str(reference_inventory)}
    cmd = [CONFTOOL, "audit", "schedule", "--cron", "0 0 1 1 *", "--alert", http_receiver.url]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        new_year = f"{datetime.now(ZoneInfo('Asia/Ho_Chi_Minh')).year + 1}-01-01"  # the next "0 0 1 1 *"
        assert "scheduler running" in first and new_year in first, first
        second = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
        assert second.returncode == 2 and "another audit scheduler" in second.stderr
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "scheduler stopped cleanly (SIGTERM) after 0 run(s)" in out
    assert took < 5, took
    assert "Traceback" not in err


def test_once_without_a_lab_exits_2(tmp_path: Path, state_dir: Path, reference_inventory: Path) -> None:
    env = {**os.environ, "LIENTHONG_DB": f"sqlite:///{tmp_path / 'a.db'}",
           "LIENTHONG_INVENTORY": str(reference_inventory)}
    p = subprocess.run([CONFTOOL, "audit", "schedule", "--once", "--json"], capture_output=True, text=True,
                       env=env, timeout=120)
    assert p.returncode == 2, p.stderr
    assert "no lab is running" in json.loads(p.stdout)["summary"]["error"]
    assert "Traceback" not in p.stderr


@pytest.mark.parametrize(("expr", "cal"), [("30 6 * * 1-5", "Mon..Fri *-*-* 06:30:00 UTC"),
                                           ("0 */4 * * *", "*-*-* 00/4:00:00 UTC")])
def test_cron_to_oncalendar(expr: str, cal: str) -> None:
    assert cron_to_oncalendar(expr, "UTC") == cal


def test_backup_and_alert_failures_are_contained(tmp_path: Path) -> None:
    clock = FakeClock(START)
    backups: list[datetime] = []

    def backup() -> str:
        backups.append(clock.now())
        if len(backups) == 2:
            raise OSError("backup repository is read-only")
        return "abc1234567 (7 configs, 0 failed)"

    def alert(run: RunRecord, now: datetime) -> dict[str, int]:
        raise ConnectionError("state database went away")

    with AuditStore(f"sqlite:///{tmp_path / 'a.db'}") as st:
        job = AuditJob(audit=lambda: make_run(clock.now()), save=st.save, alert=alert, backup=backup, clock=clock)
        ticks = Scheduler("0 */4 * * *", job, clock=clock).run(threading.Event(), max_runs=2)
        assert len(st.runs()) == 2
    assert ticks[0].backup == "abc1234567 (7 configs, 0 failed)"
    assert ticks[1].backup == "failed: OSError: backup repository is read-only"
    assert ticks[0].alerts == {"error": "ConnectionError: state database went away"} and ticks[0].ok
