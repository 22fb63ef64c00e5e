"""The web service with SFU worker processes (``LIENTHONG_SFU_WORKERS=2``), end to end in namespaces of ours.

Real parts: ``meeting serve`` (its lifespan starts the workers), the host hall's room agent (on the primary) and
commune agents (each on a worker: agents send no ``Origin``). What rooms receive is read from the agents' own
counters, so "the floor moved", "the audio stopped" and "back after the worker died" are packets arriving.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent.helpers import AgentProc, Server, create_meeting, site_tokens
from tests.live.helpers import Api, rows, until
from tests.live.test_live_netns import counts_over, reception
from tests.media.conftest import MediaNetns
from tests.meeting.conftest import prepare_db

HOST = "11"
A, B = "03160", "03163"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def _workers(log: Path) -> dict[int, int]:
    """Worker index -> pid of its latest start, from the server log."""
    found: dict[int, int] = {}
    for index, pid in re.findall(r"sfu worker (\d+) started \(pid (\d+)\)", log.read_text()):
        found[int(index)] = int(pid)
    return found


def _placed(log: Path, site: str) -> int:
    """The worker the site's latest session went to."""
    hits = re.findall(rf"site {site} on sfu worker (\d+)", log.read_text())
    assert hits, f"site {site} was not placed on a worker"
    return int(hits[-1])


@pytest.fixture
def server(media_netns: MediaNetns, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    monkeypatch.setenv("LIENTHONG_SFU_WORKERS", "2")
    srv = Server(media_netns.ns, media_netns.addr_a, 8000, f"sqlite:///{tmp_path / 'meeting.db'}",
                 tmp_path / "server.log")
    seen: set[int] = set()
    try:
        yield srv
        seen = set(_workers(srv.log).values())
    finally:
        srv.stop()
        seen |= set(_workers(srv.log).values()) if srv.log.exists() else set()
        for pid in seen:  # every worker the server started is gone with it (a stray one is killed, then fails)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
                pytest.fail(f"sfu worker pid {pid} outlived the server")


def test_sites_on_workers_receive_floor_mute_drop_and_worker_restart(
    server: Server, media_netns: MediaNetns, tmp_path: Path, reference_inventory: Path
) -> None:
    api_tokens = prepare_db(server.db_url, reference_inventory)
    tokens = site_tokens(server.db_url, [HOST, A, B], tmp_path)
    meeting_id, _ = create_meeting(server.db_url, [HOST, A, B], start_in_s=0, minutes=30)
    server.start(timeout=120)  # a loaded 2-core machine imports slowly
    admin = Api(media_netns.ns, server.url, api_tokens["admin"])
    live = f"/api/v1/meetings/{meeting_id}/live"
    config = tmp_path / "agent.yml"
    config.write_text(f"heartbeat_s: 1\npoll_s: 1\nrun_dir: '{tmp_path / 'run'}'\n")
    agents: dict[str, AgentProc] = {}
    try:
        agents[HOST] = AgentProc.start(media_netns.ns, HOST, server.url, tokens[HOST], "--config", str(config))
        agents[HOST].wait("connected", timeout=30)
        for site in (A, B):
            agents[site] = AgentProc.start(media_netns.ns_b, site, server.url, tokens[site], "--config", str(config))
        for site in (A, B):
            agents[site].wait("receiving", timeout=30)
        assert {_placed(server.log, A), _placed(server.log, B)} == {0, 1}  # one per worker, the host on the primary
        for site in (A, B):  # the host's picture and sound over the relay to each worker
            video, audio = counts_over(agents[site])
            assert video > 15 and audio > 50, (site, video, audio)
        until("A and B connected", lambda: all(rows(admin.get(live))[s]["state"] == "connected" for s in (A, B)))

        # the hall leaves; the floor to A (worker 0 or 1): B, on the other worker, gets A through the primary
        agents.pop(HOST).stop()
        doc = admin.post(f"/api/v1/meetings/{meeting_id}/floor", {"site": A})
        assert doc["floor"] == A
        agents[A].wait("floor", timeout=10, where=lambda e: e["granted"] is True)
        until("B receiving A", lambda: counts_over(agents[B], 1)[0] > 5, timeout=20)
        video, audio = counts_over(agents[B])
        assert video > 15 and audio > 50, (video, audio)

        # mute A: its audio stops at B, its picture does not
        admin.post(f"/api/v1/meetings/{meeting_id}/mute", {"site": A, "muted": True})
        agents[A].wait("mute", timeout=10, where=lambda e: e["muted"] is True)
        time.sleep(1.5)
        video, audio = counts_over(agents[B])
        assert video > 15 and audio <= 3, (video, audio)
        admin.post(f"/api/v1/meetings/{meeting_id}/mute", {"site": A, "muted": False})

        # A freezes (SIGSTOP: the floor holder goes silent, its socket stays open): dropped, then back
        os.kill(agents[A].proc.pid, signal.SIGSTOP)
        try:
            until("A dropped", lambda: rows(admin.get(live))[A]["state"] == "dropped", timeout=15)
        finally:
            os.kill(agents[A].proc.pid, signal.SIGCONT)
        until("A connected again", lambda: rows(admin.get(live))[A]["state"] == "connected", timeout=20)

        # kill B's worker by its pid: B's socket closes, its agent rejoins (on a live worker), the worker restarts
        index = _placed(server.log, B)
        old_pid = _workers(server.log)[index]
        killed = time.monotonic()
        os.kill(old_pid, signal.SIGKILL)
        agents[B].wait("connected", after=killed, timeout=30)
        # (if A had moved to that worker when it rejoined above, A rejoins too and gets its floor back first)
        until("B receiving again", lambda: reception(agents[B], time.monotonic())["video_frames"] > 10,
              timeout=40)
        until("worker restarted", lambda: _workers(server.log)[index] != old_pid, timeout=10)
        assert _alive(_workers(server.log)[index])
        assert "died" in server.log.read_text()
    finally:
        for a in agents.values():
            a.stop()
