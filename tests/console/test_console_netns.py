"""The console scenario of test_console_lab.py in namespaces of our own (no lab, no lab lock).

``lt-console-<pid>`` holds a bridge (10.98.0.1/24), ``meeting serve``, the host hall's agent and Chromium; two room
namespaces ``…-r1`` / ``…-r2`` (10.98.0.2 / .3) hold five commune agents each behind one veth, so the first room's
link can be cut alone. Same assertions as the lab version; kept because it needs no lab and so runs while another
test process holds the lab. Everything is removed in the finalizer, also after a failure.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent.helpers import Server, prepare_db
from tests.console.test_console_lab import Stage, run_scenario

pytestmark = pytest.mark.slow  # ~1.5 min; the lab version is the one in the default run

SITES = ["03160", "03163", "03166", "03169", "03172", "03175", "03178", "03181", "03184", "03187"]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@pytest.fixture
def stage(tmp_path: Path, reference_inventory: Path) -> Iterator[Stage]:
    if os.geteuid() != 0:
        pytest.fail("the console namespace test creates network namespaces and needs root")
    pid = os.getpid()
    hall, rooms = f"lt-console-{pid}", [f"lt-console-{pid}-r1", f"lt-console-{pid}-r2"]
    made: list[str] = []
    server: Server | None = None
    try:
        _ip("netns", "add", hall)
        made.append(hall)
        _ip("-n", hall, "link", "set", "lo", "up")
        _ip("-n", hall, "link", "add", "br0", "type", "bridge")
        _ip("-n", hall, "addr", "add", "10.98.0.1/24", "dev", "br0")
        _ip("-n", hall, "link", "set", "br0", "up")
        for i, room in enumerate(rooms, start=1):
            _ip("netns", "add", room)
            made.append(room)
            _ip("-n", room, "link", "set", "lo", "up")
            _ip("-n", hall, "link", "add", f"cr{i}", "type", "veth", "peer", "name", "eth0", "netns", room)
            _ip("-n", hall, "link", "set", f"cr{i}", "master", "br0", "up")
            _ip("-n", room, "addr", "add", f"10.98.0.{1 + i}/24", "dev", "eth0")
            _ip("-n", room, "link", "set", "eth0", "up")
        db_url = f"sqlite:///{tmp_path / 'meeting.db'}"
        prepare_db(db_url, reference_inventory)
        server = Server(hall, "10.98.0.1", 8000, db_url, tmp_path / "server.log")
        server.start(timeout=60)

        def cut_link(up: bool) -> None:
            _ip("-n", hall, "link", "set", "cr1", "up" if up else "down")

        work = tmp_path / "work"
        work.mkdir()
        yield Stage(server.url, hall, db_url, work, {s: rooms[i // 5] for i, s in enumerate(SITES)}, rooms[0],
                    cut_link)
    finally:
        if server is not None:
            server.stop()
        for ns in reversed(made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


@pytest.mark.timeout(600)
def test_console_drives_ten_agents_in_namespaces(stage: Stage, tmp_path: Path) -> None:
    run_scenario(stage, tmp_path)
