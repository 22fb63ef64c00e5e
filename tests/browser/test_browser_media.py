"""A browser room PC in a real meeting: Debian's Chromium (Playwright, fake camera/mic) against the real
``meeting serve`` in a namespace pair of ours (``lt-browser-test-<pid>``; server at 10.99.0.1, Chromium, the host
hall and a room agent behind the veth at 10.99.0.2 — nothing else is reachable, nothing touches the machine's own
interfaces).

* ``/join/{token}``: the page receives the host's video (``getStats()`` framesDecoded grows), its own camera
  reaches the SFU when the host gives it the floor and stops when the floor is revoked; the hall wall shows a
  thumbnail from the browser and one from a room agent.
* ``/kiosk/{site}#t=…``: waits, joins the meeting at its start by itself, returns to waiting after its end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.agent.helpers import AgentProc, Server, create_meeting, site_tokens
from tests.media.conftest import MediaNetns, veth_namespaces
from tests.meeting.conftest import PASSWORD
from tests.meeting.conftest import prepare_db as prepare_db_with_users

REPO = Path(__file__).resolve().parents[2]
HOST = "11"
BROWSER_SITE = "03160"
AGENT_SITE = "03163"
KIOSK_SITE = "03166"
KIOSK_HOST = "096"  # the district hosts the kiosk's meeting (the province hall is busy with the first one)


@dataclass
class World:
    net: MediaNetns
    db_url: str
    server: Server
    tokens: dict[str, Path]
    dir: Path

    def scenario(self, name: str, *args: str, timeout: float = 150) -> dict[str, Any]:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        cp = subprocess.run(
            ["ip", "netns", "exec", self.net.ns_b, sys.executable, "-m", "tests.browser.scenarios", name,
             "--server", self.server.url, *args],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
        lines = [ln for ln in cp.stdout.splitlines() if ln.startswith("{")]
        if cp.returncode != 0 or not lines:
            pytest.fail(f"browser scenario {name} exited {cp.returncode}\n--- stdout\n{cp.stdout[-3000:]}\n"
                        f"--- stderr\n{cp.stderr[-5000:]}\n--- server log\n{self.server.log.read_text()[-3000:]}")
        result: dict[str, Any] = json.loads(lines[-1])
        return result


WALL_HOST = "097"  # Mường Chà hosts the wall measurement: 10 of its communes send thumbnails
WALL_SITES = ["03172", "03178", "03181", "03190", "03191", "03193", "03194", "03196", "03197", "03200"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, reference_inventory: Path) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("browser")
    with veth_namespaces("browser tests", "lt-browser-test", "ltb") as net:
        db_url = f"sqlite:///{tmp / 'meeting.db'}"
        api = prepare_db_with_users(db_url, reference_inventory)
        tokens = site_tokens(db_url, [HOST, BROWSER_SITE, AGENT_SITE, KIOSK_SITE, KIOSK_HOST, WALL_HOST, *WALL_SITES],
                             tmp)
        tokens["api:secretariat"] = tmp / "api-secretariat"
        tokens["api:secretariat"].write_text(api["secretariat"])
        server = Server(net.ns, net.addr_a, 8000, db_url, tmp / "server.log")
        try:
            server.start(timeout=90)  # the machine is shared: a slow start is not what these tests are about
            yield World(net, db_url, server, tokens, tmp)
        finally:
            server.stop()


def test_join_page_receives_the_hall_sends_on_the_floor_and_feeds_the_wall(world: World) -> None:
    meeting_id, _ = create_meeting(world.db_url, [HOST, BROWSER_SITE, AGENT_SITE], start_in_s=0, minutes=30,
                                   title="Họp thử trình duyệt")
    agent = AgentProc.start(world.net.ns_b, AGENT_SITE, world.server.url, world.tokens[AGENT_SITE])
    try:
        r = world.scenario("join", "--meeting", str(meeting_id), "--host-token", str(world.tokens[HOST]),
                           "--site", BROWSER_SITE, "--site-token", str(world.tokens[BROWSER_SITE]),
                           "--password", PASSWORD, "--wall-sites", AGENT_SITE,
                           "--api-token", str(world.tokens["api:secretariat"]))
    finally:
        agent.stop()
    print(json.dumps(r, ensure_ascii=False))
    log = world.server.log.read_text()
    assert '"/join/…"' in log and "/join/ljt" not in log  # the join token in the path never reaches the log
    # the hall's picture is decoded in the page, and keeps coming (15 fps test source: ≥ 20 frames in 3 s)
    d0, d1 = r["decoded"]
    assert d0 > 0 and d1 - d0 >= 20, r
    assert r["audio_packets"][1] > r["audio_packets"][0] > 0, r
    assert r["remote_size"] == [320, 180], r  # the host agent's test source, forwarded without transcoding
    # the uplink is idle until the floor; then the browser's camera reaches the SFU; revoked → idle again
    assert r["published_before_floor"] == 0 and r["encoded_before_floor"] == 0, r
    p1, p2 = r["published_on_floor"]
    assert p2 - p1 >= 20, r
    assert r["encoded_on_floor"][1] > r["encoded_on_floor"][0], r
    q1, q2 = r["published_after_revoke"]
    assert q2 - q1 <= 2, r
    # the hall wall: a 160×90 thumbnail from the browser (canvas) and from the room agent (PyAV)
    wall = {site: (w, h) for site, w, h in r["wall"]}
    assert wall.get(BROWSER_SITE) == (160, 90) and wall.get(AGENT_SITE) == (160, 90), r
    assert all(0 < item["bytes"] <= 12 * 1024 for item in r["wall_api"]), r
    # live control on the page: raised hand reaches the console's state, mute silences the mic, removal is final
    assert r["hand_button"] == "1" and r["hand_in_live"] is True, r
    rehearsal = r["rehearsal"] or {}
    assert r["rehearsal_status"] == 200 and rehearsal.get("video_ok") and rehearsal.get("audio_ok"), r
    assert rehearsal.get("received_ok") is True, r  # the page reported what it decoded from the hall meanwhile
    assert r["mute_status"] == 200 and r["mic_enabled_when_muted"] == [False] and r["notice_when_muted"], r
    assert r["remove_status"] == 200 and r["state_after_remove"] == "removed" and r["pc_after_remove"], r
    assert "mời ra khỏi" in r["status_after_remove"], r


def test_kiosk_joins_at_the_start_by_itself_and_waits_again_after_the_end(world: World) -> None:
    r = world.scenario("kiosk", "--host-site", KIOSK_HOST, "--host-token", str(world.tokens[KIOSK_HOST]),
                       "--site", KIOSK_SITE, "--site-token", str(world.tokens[KIOSK_SITE]),
                       "--api-token", str(world.tokens["api:secretariat"]))
    print(json.dumps(r, ensure_ascii=False))
    token = world.tokens[KIOSK_SITE].read_text().strip()
    assert "#t=" not in r["url_after_load"] and token not in r["url_after_load"] and r["stored"], r
    assert "Chưa có cuộc họp" in r["status_without_meeting"], r
    assert r["waiting_before"] and not r["participant_before"] and "Họp thử kiosk" in r["next_meeting"], r
    assert r["before_start_s"] > 0, r  # the page was waiting before the start …
    assert -0.5 <= r["join_began_after_start_s"] <= 3, r  # … began joining at the start by itself …
    assert r["connected_after_start_s"] <= 15, r  # … and was in the meeting moments later
    assert r["decoded"][1] > r["decoded"][0] > 0, r
    assert 0 <= r["waiting_after_end_s"] <= 8 and not r["participant_after"], r
    assert r["live_start_status"] == 200 and r["join_now_connected_s"] <= 15, r  # started early: joins at once
    log = world.server.log.read_text()
    assert token not in log


@pytest.mark.slow
def test_wall_bandwidth_at_10_sites(world: World) -> None:
    """10 room agents + the host hall: every site on the wall, the thumbnails within the 2000 kbit/s budget."""
    meeting_id, _ = create_meeting(world.db_url, [WALL_HOST, *WALL_SITES], start_in_s=0, minutes=30,
                                   host=WALL_HOST, title="Đo màn hình tổng")
    agents = [AgentProc.start(world.net.ns_b, s, world.server.url, world.tokens[s]) for s in [WALL_HOST, *WALL_SITES]]
    try:
        for a in agents:
            a.wait("connected", timeout=60)
        r = world.scenario("wallrate", "--meeting", str(meeting_id), "--api-token",
                           str(world.tokens["api:secretariat"]), "--seconds", "15")
    finally:
        for a in agents:
            a.stop()
    print(json.dumps(r, ensure_ascii=False))
    assert r["sites"] == 11, r  # the host hall sends one too
    assert 0 < r["upload_kbps"] <= 2000, r
    assert r["per_site_fps"] <= 1.05, r
