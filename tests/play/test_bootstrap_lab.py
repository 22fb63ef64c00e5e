"""`conftool bootstrap` for real: pyinfra over SSH into the lab's province server namespace."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.lab.fixtures import REPO, LabSession

pytestmark = [pytest.mark.lab, pytest.mark.timeout(900)]

SRV = "srv-dien-bien"
HEALTH = ("import json, urllib.request; "
          "print(json.dumps(json.load(urllib.request.urlopen('http://127.0.0.1:8000/api/v1/health', timeout=3))))")


@pytest.fixture(scope="module")
def fresh_lab(lab_session: LabSession) -> Iterator[LabSession]:
    if not any((REPO / ".wheelhouse").glob("lienthong-*.whl")):
        pytest.fail("no wheelhouse: run scripts/install.d/40-wheelhouse.sh")
    lab_session.up()
    yield lab_session
    lab_session.down()  # the server now runs our services: later modules get a fresh lab


def bootstrap(lab: LabSession, *args: str) -> tuple[int, dict[str, Any]]:
    cp = lab.cli("bootstrap", "--host", SRV, *args, "--json", timeout=900)
    assert cp.stdout.strip(), cp.stderr
    return cp.returncode, json.loads(cp.stdout)


def test_meeting_server_bootstrap_answers_and_is_idempotent(fresh_lab: LabSession) -> None:
    lab = fresh_lab
    rc, doc = bootstrap(lab)
    item = doc["items"][0]
    assert rc == 0 and item["status"] == "changed", doc
    assert "meeting-server supervised" in item["detail"]["changed_ops"]
    deadline, last = time.monotonic() + 90, None
    while time.monotonic() < deadline:
        last = lab.exec(SRV, "python3", "-c", HEALTH)
        if last.returncode == 0:
            break
        time.sleep(1)
    assert last is not None and last.returncode == 0, last.stderr if last else ""
    assert json.loads(last.stdout).get("status") == "ok", last.stdout
    # The server listens inside the host namespace, not on the machine.
    assert lab.exec(SRV, "sh", "-c", "cat /run/lienthong/meeting-server.pid").returncode == 0
    rc, doc = bootstrap(lab)
    item = doc["items"][0]
    assert rc == 0 and item["status"] == "ok" and item["detail"]["changed"] == 0, doc


def test_unknown_role_and_host_exit_2(fresh_lab: LabSession) -> None:
    cp = fresh_lab.cli("bootstrap", "--host", SRV, "--role", "nope")
    assert cp.returncode == 2 and "unknown role 'nope'" in cp.stderr
    cp = fresh_lab.cli("bootstrap", "--host", "srv-nowhere")
    assert cp.returncode == 2 and "servers: srv-dien-bien" in " ".join(cp.stderr.split())


def _alive_pid(lab: LabSession, pidfile: str, settle_s: float = 3.0) -> str:
    """The pid in PIDFILE inside the server, the same after `settle_s` (the service stays up)."""
    deadline, pid = time.monotonic() + 30, ""
    while time.monotonic() < deadline and not pid:
        cp = lab.exec(SRV, "cat", pidfile)
        pid = cp.stdout.strip() if cp.returncode == 0 else ""
        time.sleep(0.5)
    assert pid, f"no {pidfile} in {SRV}"
    time.sleep(settle_s)
    assert lab.exec(SRV, "cat", pidfile).stdout.strip() == pid, f"{pidfile}: the service restarted"
    return pid


def test_turn_with_vaulted_credentials(fresh_lab: LabSession) -> None:
    lab = fresh_lab
    secret = "turn-pw-Hq71x"
    env = {**lab.env, "LT_TEST_TURN_PASSWORD": secret}
    import subprocess

    from tests.lab.fixtures import CONFTOOL

    def run() -> tuple[int, dict[str, Any], str]:
        cp = subprocess.run([*CONFTOOL, "bootstrap", "--host", SRV, "--role", "turn", "--turn-credentials",
                             "env:LT_TEST_TURN_PASSWORD", "--json"], capture_output=True, text=True, env=env,
                            timeout=600, cwd=REPO)
        return cp.returncode, json.loads(cp.stdout), cp.stdout + cp.stderr

    rc, doc, text = run()
    assert rc == 0 and doc["items"][0]["status"] == "changed", doc
    assert secret not in text
    pid = _alive_pid(lab, "/run/lienthong/turn.pid")
    assert "turnserver" in lab.exec(SRV, "cat", f"/proc/{pid}/cmdline").stdout
    conf = lab.exec(SRV, "sh", "-c", "stat -c %a /etc/lienthong/turnserver.conf; ss -ulnH 'sport = :3478'").stdout
    assert conf.split()[0] == "600" and ":3478" in conf
    rc, doc, _ = run()
    assert rc == 0 and doc["items"][0]["detail"]["changed"] == 0, doc


@pytest.mark.slow  # ~45 s (the inventory is copied file by file); run with -m slow
def test_audit_runner_is_supervised(fresh_lab: LabSession) -> None:
    rc, doc = bootstrap(fresh_lab, "--role", "audit-runner", "--cron", "0 3 * * *")
    assert rc == 0 and doc["items"][0]["status"] == "changed", doc
    pid = _alive_pid(fresh_lab, "/run/lienthong/audit-runner.pid")
    assert "schedule" in fresh_lab.exec(SRV, "cat", f"/proc/{pid}/cmdline").stdout
    rc, doc = bootstrap(fresh_lab, "--role", "audit-runner", "--cron", "0 3 * * *")
    assert rc == 0 and doc["items"][0]["detail"]["changed"] == 0, doc
