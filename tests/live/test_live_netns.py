"""Live control end to end: the real meeting service, real room agents (aiortc peers), a namespace pair of ours.

What the rooms receive is read from the agents' own counters (their ``reception`` events, one per heartbeat), so
"the floor moved" and "the audio stopped" are proven by packets arriving or not at the other rooms, not by the
server's word. No lab is needed; the console test with 10 lab agents is tests/console.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from meeting.db import make_engine, make_sessionmaker
from meeting.models import Attendance
from tests.agent.helpers import REPO, AgentProc, Server, create_meeting, site_tokens
from tests.live.helpers import Api, rows, until
from tests.media.conftest import MediaNetns
from tests.meeting.conftest import prepare_db

HOST = "11"
A, B, C = "03160", "03163", "03166"  # communes of Mường Nhé


@dataclass
class World:
    net: MediaNetns
    db_url: str
    server: Server
    admin: Api
    tokens: dict[str, Path]
    dir: Path
    agents: list[AgentProc]

    def agent(self, site: str, *extra: str, source: str = "testsrc") -> AgentProc:
        config = self.dir / f"agent-{site}.yml"
        config.write_text(f"heartbeat_s: 1\npoll_s: 1\nrun_dir: '{self.dir / 'run'}'\nsource: {source}\n")
        ns = self.net.ns if site == HOST else self.net.ns_b
        a = AgentProc.start(ns, site, self.server.url, self.tokens[site], "--config", str(config), *extra)
        self.agents.append(a)
        return a


@pytest.fixture
def world(live_netns: MediaNetns, tmp_path: Path, reference_inventory: Path) -> Iterator[World]:
    db_url = f"sqlite:///{tmp_path / 'meeting.db'}"
    api_tokens = prepare_db(db_url, reference_inventory)
    tokens = site_tokens(db_url, [HOST, A, B, C], tmp_path)
    server = Server(live_netns.ns, live_netns.addr_a, 8000, db_url, tmp_path / "server.log")
    server.start()
    w = World(live_netns, db_url, server, Api(live_netns.ns, server.url, api_tokens["admin"]), tokens, tmp_path, [])
    try:
        yield w
    finally:
        for a in w.agents:
            a.stop()
        server.stop()


def reception(agent: AgentProc, after: float = 0.0) -> dict[str, Any]:
    """The agent's latest counters (video/audio frames received in its current session)."""
    _, ev = agent.wait("reception", after=after, timeout=10)
    return ev


def counts_over(agent: AgentProc, seconds: float = 2.0) -> tuple[int, int]:
    """How many video and audio frames the room received over the next ``seconds`` (from two reception events)."""
    t0 = time.monotonic()
    first = reception(agent, after=t0)
    time.sleep(seconds)
    last = reception(agent, after=time.monotonic())
    return last["video_frames"] - first["video_frames"], last["audio_frames"] - first["audio_frames"]


def spans(db_url: str, site: str) -> list[Attendance]:
    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as s:
            return list(s.scalars(select(Attendance).where(Attendance.site_id == site).order_by(Attendance.id)))
    finally:
        engine.dispose()


def hand(world: World, site: str, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "meeting.agent.control", "hand", "--site", site, "--run-dir",
                           str(world.dir / "run"), "--json", *flags], capture_output=True, text=True, cwd=REPO,
                          timeout=20)


def test_hand_floor_mute_restart_remove_stop(world: World) -> None:
    meeting_id, _ = create_meeting(world.db_url, [HOST, A, B, C], start_in_s=3600, minutes=60)
    live = f"/api/v1/meetings/{meeting_id}/live"
    agents = {A: world.agent(A, "--once"), B: world.agent(B, "--once"), C: world.agent(C)}
    for a in agents.values():
        a.wait("started", timeout=40)
    time.sleep(1.5)
    assert world.admin.get(live)["state"] == "idle"
    assert not any(e.get("event") == "connected" for a in agents.values() for _, e in a.events)  # an hour early

    # start from the console: join_now brings every room in at once, an hour before the scheduled time
    assert world.admin.post(f"{live}/start")["state"] == "live"
    for a in agents.values():
        a.wait("connected", timeout=30)
    doc = until("three rooms connected", lambda: (d := world.admin.get(live)) and all(
        rows(d)[s]["state"] == "connected" for s in (A, B, C)) and d)
    assert rows(doc)[HOST]["state"] == "invited" and doc["floor"] is None
    # nobody speaks yet (no host hall in this test): the rooms receive nothing
    assert counts_over(agents[B], 2) == (0, 0)

    # raise hand with the operator's local command -> the console sees it
    cp = hand(world, A)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    until("A's hand up", lambda: rows(world.admin.get(live))[A]["hand"])
    agents[A].wait("hand", timeout=5, where=lambda e: e["raised"] is True)

    # grant -> A's camera and microphone reach B and C; its hand goes down
    doc = world.admin.post(f"/api/v1/meetings/{meeting_id}/floor", {"site": A})
    assert doc["floor"] == A and rows(doc)[A]["hand"] is False
    agents[A].wait("floor", timeout=5, where=lambda e: e["granted"] is True)
    until("B receiving A", lambda: reception(agents[B], time.monotonic())["video_frames"] > 20, timeout=20)
    for site in (B, C):
        video, audio = counts_over(agents[site])
        assert video > 15 and audio > 50, (site, video, audio)

    # mute A: its audio no longer reaches B (video still does); unmute brings it back
    doc = world.admin.post(f"/api/v1/meetings/{meeting_id}/mute", {"site": A, "muted": True})
    assert rows(doc)[A]["muted"] is True
    agents[A].wait("mute", timeout=5, where=lambda e: e["muted"] is True)
    time.sleep(1)
    video, audio = counts_over(agents[B])
    assert video > 15 and audio <= 3, (video, audio)
    world.admin.post(f"/api/v1/meetings/{meeting_id}/mute", {"site": None, "muted": False})
    time.sleep(1)
    video, audio = counts_over(agents[B])
    assert audio > 50, audio

    # mute all: every room but the host hall
    doc = world.admin.post(f"/api/v1/meetings/{meeting_id}/mute", {"site": None, "muted": True})
    assert all(r["muted"] is (not r["host"]) for r in doc["sites"])
    time.sleep(1)
    assert counts_over(agents[B])[1] <= 3

    # the server dies and comes back: the floor holder and the mutes are rebuilt from the events
    world.server.kill()
    world.server.start()
    restarted = time.monotonic()
    doc = world.admin.get(live)
    assert doc["floor"] == A and doc["state"] == "live"
    assert all(r["muted"] is (not r["host"]) for r in doc["sites"])
    for a in agents.values():
        a.wait("connected", after=restarted, timeout=20)
    until("B receiving A again", lambda: reception(agents[B], time.monotonic())["video_frames"] > 20, timeout=20)
    video, audio = counts_over(agents[B])
    assert video > 15 and audio <= 3, (video, audio)

    # revoke: back to the hall (absent here), B receives nothing any more
    assert world.admin.delete(f"/api/v1/meetings/{meeting_id}/floor")["floor"] is None
    agents[A].wait("floor", after=restarted, timeout=5, where=lambda e: e["granted"] is False)
    time.sleep(1)
    assert counts_over(agents[B])[0] <= 2

    # remove C: 4412, no rejoin (the agent keeps running for later meetings), its attendance span says removed
    removed_at = time.monotonic()
    doc = world.admin.post(f"/api/v1/meetings/{meeting_id}/sites/{C}/remove")
    agents[C].wait("removed", after=removed_at, timeout=10)
    until("C removed", lambda: rows(world.admin.get(live))[C]["state"] == "removed")
    time.sleep(2)
    assert agents[C].proc.poll() is None
    assert not [e for at, e in agents[C].events if at > removed_at and e.get("event") == "connected"]
    assert spans(world.db_url, C)[-1].reason == "removed"
    # a restarted agent of C sees join_now, tries once, is refused with 4412 and does not retry
    agents[C].stop()
    again = world.agent(C, "--once")
    again.wait("removed", timeout=40)
    assert again.proc.wait(15) == 0
    assert not [e for _, e in again.events if e.get("event") in ("dropped", "connected")]
    assert spans(world.db_url, C)[-1].reason == "removed"  # the refused try opened no span

    # stop: every room gets 4413, --once agents exit 0, spans end with meeting_ended
    doc = world.admin.post(f"{live}/stop")
    assert doc["state"] == "ended"
    for site in (A, B):
        agents[site].wait("ended", timeout=10)
        assert agents[site].proc.wait(15) == 0
        assert spans(world.db_url, site)[-1].reason == "meeting_ended"

    # everything logged, newest first, with who did it
    events = world.admin.get(f"/api/v1/meetings/{meeting_id}/events?limit=500")
    actions = [e["action"] for e in reversed(events)]
    for needed in ("start", "join", "hand_raised", "floor_granted", "mute", "unmute", "floor_revoked", "remove",
                   "stop"):
        assert needed in actions, needed
    assert next(e for e in events if e["action"] == "hand_raised")["actor"] == f"site:{A}"
    assert next(e for e in events if e["action"] == "floor_granted")["actor"] == "admin"
    log = (world.dir / "server.log").read_text()
    assert "floor_granted site 03160 by admin" in log and "lts_" not in log and "ltu_" not in log


def test_rehearsal_checks_camera_microphone_and_reception(world: World) -> None:
    meeting_id, _ = create_meeting(world.db_url, [HOST, A, B], start_in_s=3600, minutes=60)
    live = f"/api/v1/meetings/{meeting_id}/live"
    agents = {HOST: world.agent(HOST), A: world.agent(A), B: world.agent(B, source="testsrc-audio")}
    for a in agents.values():
        a.wait("started", timeout=40)
    # "chạy thử" before the start: the state alone makes the rooms join (join_now)
    assert world.admin.post(f"{live}/rehearsal", {"seconds": 3})["state"] == "rehearsal"
    for a in agents.values():
        a.wait("connected", timeout=30)
    until("all connected", lambda: all(r["state"] == "connected" for r in world.admin.get(live)["sites"]))
    time.sleep(1)  # the host's first pictures reach the rooms
    started = time.monotonic()
    world.admin.post(f"{live}/rehearsal", {"seconds": 3})
    for a in agents.values():
        a.wait("rehearsal-report", after=started, timeout=15)
    doc = until("rehearsal results", lambda: (d := world.admin.get(live)) and all(
        r["rehearsal"] for r in d["sites"]) and d, timeout=15)
    got = rows(doc)
    print({s: r["rehearsal"] for s, r in got.items()})
    assert got[A]["rehearsal"]["video_ok"] is True and got[A]["rehearsal"]["audio_ok"] is True
    assert got[A]["rehearsal"]["received_ok"] is True and got[A]["rehearsal"]["video_fps"] >= 5
    assert got[B]["rehearsal"]["video_ok"] is False and got[B]["rehearsal"]["video_fps"] == 0
    assert got[B]["rehearsal"]["audio_ok"] is True and got[B]["rehearsal"]["received_ok"] is True
    assert got[HOST]["rehearsal"]["video_ok"] is True and got[HOST]["rehearsal"]["received_ok"] is None
    assert 5 <= got[HOST]["rehearsal"]["video_fps"] <= 17  # the hall sends 15 fps all along: rated over the window
    # the test is not forwarded: the host hall (speaking, nobody holds the floor) received nothing from the rooms
    assert doc["floor"] is None and reception(agents[HOST], time.monotonic())["video_frames"] == 0
    # stats: numbers for a room receiving the hall
    until("stats for A", lambda: rows(world.admin.get(live))[A]["stats"]["bitrate_kbps"])
    stats = rows(world.admin.get(live))[A]["stats"]
    print("stats A", stats)
    assert stats["bitrate_kbps"] > 50 and stats["loss_pct"] is not None
