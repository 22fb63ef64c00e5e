"""The service helpers the roles ship for hosts without systemd (lt-daemon, lt-supervise), run for real here."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftool.play import playbooks_dir

FILES = playbooks_dir() / "roles" / "lt_common" / "files"
LT_DAEMON, LT_SUPERVISE = str(FILES / "lt-daemon"), str(FILES / "lt-supervise")


def wait(cond: Callable[[], bool], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def pid_of(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text())
    except (OSError, ValueError):
        return None


def alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rfind(")") + 2] != "Z"


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[tuple[Path, Path, Path]]:
    """lt-supervise started through lt-daemon (as the role does), child = a sleep; always stopped."""
    sup_pid, child_pid, log = tmp_path / "sup.pid", tmp_path / "run" / "agent.pid", tmp_path / "log" / "agent.log"
    cp = subprocess.run([LT_DAEMON, "ensure", str(sup_pid), "--background", str(log), "--", "python3", LT_SUPERVISE,
                         "--pidfile", str(child_pid), "--max-backoff", "2", "--", "sleep", "300"],
                        capture_output=True, text=True, timeout=30)
    assert cp.returncode == 0 and cp.stdout.strip() == "started", cp.stderr
    try:
        yield sup_pid, child_pid, log
    finally:
        subprocess.run([LT_DAEMON, "stop", str(sup_pid)], capture_output=True, timeout=30)


def test_supervisor_restarts_the_child_and_keeps_its_pid(supervised: tuple[Path, Path, Path]) -> None:
    sup_pid, child_pid, log = supervised
    assert wait(lambda: alive(pid_of(child_pid)))
    first = pid_of(child_pid)
    assert first is not None
    # ensure is idempotent: a second call finds it running and starts nothing.
    cp = subprocess.run([LT_DAEMON, "ensure", str(sup_pid), "--background", str(log), "--", "false"],
                        capture_output=True, text=True, timeout=30)
    assert cp.stdout.strip() == "running"
    # The child dies → restarted after the backoff, under a new pid written to the pid file.
    os.kill(first, signal.SIGKILL)
    assert wait(lambda: pid_of(child_pid) not in (None, first) and alive(pid_of(child_pid)), 10)
    second = pid_of(child_pid)
    # SIGHUP (new config) → restarted at once.
    cp = subprocess.run([LT_DAEMON, "hup", str(sup_pid)], capture_output=True, text=True, timeout=30)
    assert cp.stdout.strip() == "signalled"
    assert wait(lambda: pid_of(child_pid) not in (None, second) and alive(pid_of(child_pid)), 5)
    third = pid_of(child_pid)
    # stop: the supervisor stops its child and removes the child's pid file.
    sup = pid_of(sup_pid)
    cp = subprocess.run([LT_DAEMON, "stop", str(sup_pid)], capture_output=True, text=True, timeout=30)
    assert cp.stdout.strip() == "stopped"
    assert wait(lambda: not alive(third) and not alive(sup))
    assert not child_pid.exists() and not sup_pid.exists()
    text = log.read_text()
    assert text.count("lt-supervise: started sleep") == 3 and "restarting in 1 s" in text


def test_failing_child_backs_off(tmp_path: Path) -> None:
    """Polls the supervisor's log for its third restart (1 + 2 + 2 s of backoff, plus the child starts) with a
    generous deadline: a fixed sleep was too short at load 40."""
    pidfile, errlog = tmp_path / "c.pid", tmp_path / "sup.err"
    with errlog.open("w") as errf:
        p = subprocess.Popen(["python3", LT_SUPERVISE, "--pidfile", str(pidfile), "--max-backoff", "2", "--",
                              "sh", "-c", "exit 3"], stderr=errf, text=True)
    try:
        wait(lambda: errlog.read_text().count("restarting in") >= 3, 60)
    finally:
        p.terminate()
        p.wait(timeout=10)
    err = errlog.read_text()
    waits = [ln.rsplit(" ", 2)[-2] for ln in err.splitlines() if "restarting in" in ln]
    assert waits[:3] == ["1", "2", "2"], err  # 1 s doubling, capped by --max-backoff
    assert "exited with 3" in err and not pidfile.exists()


def test_lt_daemon_self_daemonizing_command(tmp_path: Path) -> None:
    """Without --background the command daemonizes itself and writes the pid file (chronyd, rsyslogd do)."""
    pidfile = tmp_path / "d.pid"
    script = f"sleep 300 </dev/null >/dev/null 2>&1 & echo $! > {pidfile}"
    out = [subprocess.run([LT_DAEMON, action, str(pidfile), "--", "sh", "-c", script], capture_output=True,
                          text=True, timeout=30).stdout.strip() for action in ("ensure", "ensure", "restart")]
    assert out == ["started", "running", "restarted"]
    pid = pid_of(pidfile)
    assert alive(pid)
    assert subprocess.run([LT_DAEMON, "stop", str(pidfile)], capture_output=True, text=True).stdout.strip() == "stopped"
    assert wait(lambda: not alive(pid))
    assert subprocess.run([LT_DAEMON, "stop", str(pidfile)], capture_output=True, text=True).stdout.strip() == "absent"
