"""The README main command's last step (``scripts/demo.sh meeting``) against a deployed small lab.

It must end with the meeting server running on the lab's province server host, a meeting for every commune of one
district with the lab's agents in it, and the console URL reachable from the machine on the NOC's path (the lab's
management bridge) — then ``demo.sh stop`` ends exactly the processes it started.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftool.inventory import load
from tests.agent.helpers import REPO
from tests.agent.test_agent_lab import _deploy
from tests.lab.fixtures import LabSession

pytestmark = [pytest.mark.lab, pytest.mark.slow]


@pytest.fixture
def deployed(lab_session: LabSession) -> Iterator[LabSession]:
    if lab_session.is_up:
        lab_session.down()
    lab_session.up()
    try:
        _deploy(lab_session)
        yield lab_session
    finally:
        subprocess.run(["bash", "scripts/demo.sh", "stop"], cwd=REPO, env=lab_session.env, timeout=60)
        lab_session.down()


def _pids(demo: Path) -> list[int]:
    return [int(p.read_text()) for p in (demo / "pids").glob("*.pid")]


@pytest.mark.timeout(2400)
def test_demo_meeting_step(deployed: LabSession) -> None:
    env = {**deployed.env, "PATH": f"{REPO / '.venv' / 'bin'}:{os.environ['PATH']}"}
    cp = subprocess.run(["bash", "scripts/demo.sh", "meeting"], cwd=REPO, env=env, capture_output=True, text=True,
                        timeout=300)
    print(cp.stdout)
    assert cp.returncode == 0, (cp.stdout, cp.stderr[-3000:])
    inv = load(REPO / "inventory" / "dien-bien")
    n = len(inv.children("094"))  # the district of the small lab's first room PC: Điện Biên Phủ
    assert f"Đã vào họp / joined: {n}/{n} xã / communes" in cp.stdout
    url = re.search(r"host console: (http://\S+/meetings/(\d+)/console)", cp.stdout)
    assert url, cp.stdout
    demo = deployed.state / "demo"
    assert str(demo / "admin-password") in cp.stdout
    password = (demo / "admin-password").read_text().strip()
    assert password not in cp.stdout + cp.stderr  # the secret is in its 0600 file only
    assert (demo / "admin-password").stat().st_mode & 0o777 == 0o600
    pids = _pids(demo)
    assert len(pids) == 1 + 1 + n  # server + the hall's agent + one per commune

    base = url[1].split("/meetings/")[0]
    with httpx.Client(base_url=base, timeout=10, trust_env=False) as web:
        form = web.get("/login").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert csrf
        r = web.post("/login", data={"username": "admin", "password": password, "csrf_token": csrf[1],
                                     "next": f"/meetings/{url[2]}/console"}, follow_redirects=True)
        assert r.status_code == 200 and "console.js" in r.text, r.text[:500]
        live = web.get(f"/api/v1/meetings/{url[2]}/live").json()
    communes = [s for s in live["sites"] if not s["host"]]
    assert len(communes) == n
    assert sum(s["state"] == "connected" for s in communes) == n, [(s["site"], s["state"]) for s in communes]

    stop = subprocess.run(["bash", "scripts/demo.sh", "stop"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=60)
    assert stop.returncode == 0 and f"stopped: {len(pids)} process(es)" in stop.stdout, stop.stdout
    assert not [p for p in pids if Path(f"/proc/{p}").exists()]
