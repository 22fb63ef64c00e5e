"""Media through the web service's signaling WebSocket: a commune joins with a join token and gets the host hall.

Real parts only: ``meeting serve`` (its lifespan owns the SFU) in our namespace, the host site's room agent
publishing its test picture, and a commune's room agent behind the veth recording what it receives to a file,
which this test decodes: the picture must be the host's (its mean luma) and the sound must be there.
"""

from __future__ import annotations

import time
from pathlib import Path

import av
import numpy as np
from sqlalchemy import select

from meeting.db import make_engine, make_sessionmaker
from meeting.models import Attendance, Meeting
from meeting.services import attendance
from tests.agent.helpers import AgentProc, Server, create_meeting, prepare_db, site_tokens
from tests.media.conftest import MediaNetns

SITE = "03160"


def test_site_with_join_token_receives_the_host_through_the_websocket(
    media_netns: MediaNetns, tmp_path: Path, reference_inventory: Path
) -> None:
    db_url = f"sqlite:///{tmp_path / 'meeting.db'}"
    prepare_db(db_url, reference_inventory)
    tokens = site_tokens(db_url, ["11", SITE], tmp_path)
    meeting_id, _ = create_meeting(db_url, ["11", SITE], start_in_s=0, minutes=30)
    server = Server(media_netns.ns, media_netns.addr_a, 8000, db_url, tmp_path / "server.log")
    recording = tmp_path / "received.mkv"
    agents: list[AgentProc] = []
    try:
        server.start()
        agents.append(AgentProc.start(media_netns.ns, "11", server.url, tokens["11"]))
        agents.append(AgentProc.start(media_netns.ns_b, SITE, server.url, tokens[SITE], "--sink", str(recording)))
        for a in agents:
            _, ev = a.wait("connected", timeout=30)
            assert ev["meeting"] == meeting_id
        time.sleep(4)
    finally:
        for a in agents:
            a.stop()  # SIGTERM: the recorder closes its file
        server.stop()
    log = (tmp_path / "server.log").read_text()
    assert "joined via join-token" in log and f"site {SITE}" in log
    assert tokens[SITE].read_text().strip() not in log

    with av.open(str(recording)) as container:
        kinds = {s.type for s in container.streams}
        assert kinds == {"audio", "video"}
        video = list(container.decode(video=0))
    with av.open(str(recording)) as container:
        audio = list(container.decode(audio=0))
    assert len(audio) >= 50, len(audio)  # ≥ 1 s of 20 ms Opus frames, decoded
    assert len(video) >= 15, len(video)  # ≥ 1 s of the host's 15 fps picture after the first keyframe
    luma = float(np.median(video[-1].to_ndarray(format="gray")))
    assert abs(luma - 90) < 20, luma  # the host agent's test picture (meeting.agent.media: luma 90)

    # Attendance (điểm danh) was written as it happened: one closed span per site, and the report counts them.
    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as db:
            spans = db.scalars(select(Attendance).where(Attendance.meeting_id == meeting_id)).all()
            assert sorted(x.site_id for x in spans) == sorted(["11", SITE])
            assert all(x.left_at is not None and x.reason in ("left", "dropped") for x in spans)
            assert all(x.left_at > x.joined_at for x in spans if x.left_at is not None)
            m = db.get(Meeting, meeting_id)
            assert m is not None
            rep = attendance.report(db, m)
            assert rep.present == 2 and all(x.minutes > 0 for x in rep.sites if x.status == "present")
    finally:
        engine.dispose()
