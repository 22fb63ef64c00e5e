"""The whole province (slow): `lab up --profile full` = 140 routers + 130 hosts, `conftool deploy --apply`, then
the province server pings a commune's meeting-room PC over TSLCD; `lab down` removes everything."""

from __future__ import annotations

import json
import time

import pytest

from conftool.lab import neigh
from tests.lab.fixtures import LabSession, machine_snapshot

pytestmark = [pytest.mark.lab, pytest.mark.slow]

PC, PC_LAN = "pc-noong-bua", "10.11.11.10"


@pytest.mark.timeout(900)
def test_full_province_up_deploy_ping_down(lab_session: LabSession) -> None:
    lab = lab_session
    if lab.is_up:
        lab.down()
    caps_before = neigh.read()
    try:
        cp = lab.cli("lab", "up", "--profile", "full", "--json", timeout=300)
        assert cp.returncode == 0, cp.stdout + cp.stderr
        lab.is_up = True
        doc = json.loads(cp.stdout)
        roles = [n["role"] for n in doc["nodes"]]
        assert roles.count("router") == 140 and roles.count("host") == 130
        assert all(n["up"] for n in doc["nodes"])
        # 270 nodes need more kernel neighbour entries than Debian's default 1024 (neigh.py)
        assert neigh.read()["gc_thresh3"] >= max(caps_before["gc_thresh3"], neigh.wanted(270)["gc_thresh3"])

        cp = lab.cli("deploy", "--apply", "--json", timeout=600)
        assert cp.returncode == 0, cp.stdout[-3000:] + cp.stderr[-3000:]

        # The commune's LAN is reached over its TSLCD link: the province router's route points at tslcd0.
        route = lab.exec("11", "ip", "route", "get", PC_LAN).stdout
        assert "dev tslcd0" in route, route
        for _ in range(30):
            cp = lab.exec("srv-dien-bien", "ping", "-c", "3", "-i", "0.2", "-W", "2", PC_LAN)
            if cp.returncode == 0:
                break
            time.sleep(1)
        assert cp.returncode == 0, cp.stdout + cp.stderr
        assert " 0% packet loss" in cp.stdout
        assert lab.exec(PC, "hostname").stdout.strip() == PC
    finally:
        lab.down()
    assert neigh.read() == caps_before, "lab down must give the machine its own neighbour-table caps back"
    snap = machine_snapshot()
    assert not [n for n in snap["netns"] if n.startswith(("lt-", "lth-")) and not n.startswith("lt-media")]
