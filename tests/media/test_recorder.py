"""Recording the floor stream: muxed from the forwarded packets (no codec), continuous across a floor change,
stored per meeting, listed and downloadable with role checks, purged after the retention period.
"""

from __future__ import annotations

import fractions
import itertools
import json
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import av
import numpy as np
import pytest
from aiortc.codecs.opus import OpusEncoder
from sqlalchemy import select

from conftool.inventory import load
from meeting.db import make_engine, make_sessionmaker, session_scope
from meeting.media import recorder
from meeting.media.passthrough import EncodedFrame
from meeting.media.sfu import Peer, Room, Sfu
from meeting.models import Recording
from meeting.schemas import MeetingIn
from meeting.services import auth, recordings
from meeting.services import meetings as svc
from meeting.settings import Settings
from tests.media.conftest import REPO, MediaNetns
from tests.meeting.conftest import OPERATOR_SITE, future, prepare_db

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

W, H = 320, 180


def _vp8(luma: int, n: int, keyframes: tuple[int, ...] = (0,)) -> list[bytes]:
    """Really encoded VP8 (libvpx) of one luma level, keyframes exactly at the given indices."""
    ctx = av.CodecContext.create("libvpx", "w")
    ctx.width, ctx.height, ctx.pix_fmt = W, H, "yuv420p"
    ctx.time_base = fractions.Fraction(1, 15)
    ctx.gop_size = 10_000
    ctx.bit_rate = 200_000
    ctx.options = {"deadline": "realtime", "lag-in-frames": "0"}
    out: list[bytes] = []
    for i in range(n):
        y = np.full((H, W), luma, dtype=np.uint8)
        y[:, (i * 8) % (W - 16): (i * 8) % (W - 16) + 16] = 255 - luma
        frame = av.VideoFrame.from_ndarray(np.vstack([y, np.full((H // 2, W), 128, np.uint8)]), format="yuv420p")
        frame.pts = i
        frame.pict_type = av.video.frame.PictureType.I if i in keyframes else av.video.frame.PictureType.NONE
        out.extend(bytes(p) for p in ctx.encode(frame))
    return out


def _opus(n: int) -> list[bytes]:
    enc = OpusEncoder()
    t = np.arange(960) / 48000.0
    pcm = (np.sin(2 * np.pi * 440 * t) * 3000).astype(np.int16).reshape(1, -1)
    out: list[bytes] = []
    for i in range(n):
        f = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        f.sample_rate, f.pts, f.time_base = 48000, i * 960, fractions.Fraction(1, 48000)
        payloads, _ = enc.encode(f)
        out.extend(payloads)
    return out


class _Publisher:
    """What the recorder reads of an SFU source: its peer, room, kind and keyframe request (counted here)."""

    def __init__(self, room: Room, peer: Peer, kind: str) -> None:
        self.room, self.peer, self.kind = room, peer, kind
        self.keyframe_requests = 0
        peer.sources[kind] = cast(Any, self)

    def request_keyframe(self) -> None:
        self.keyframe_requests += 1


def _hall_and_commune() -> tuple[Sfu, Room, Peer, Peer]:
    """An SFU whose room "r" holds the host hall and commune "xa", without connections: the recorder only reads
    who is in the room and who holds the floor (their frames come from :class:`_Publisher`)."""
    sfu = Sfu()
    room = Room("r")
    sfu.rooms["r"] = room
    host = Peer("p-host", "host", True, cast(Any, None), None)
    site = Peer("p-xa", "xa", False, cast(Any, None), None)
    room.peers = {"p-host": host, "p-xa": site}
    return sfu, room, host, site


def _frame(kind: str, data: bytes, ts: int, key: bool) -> EncodedFrame:
    return EncodedFrame(kind=kind, codec="VP8" if kind == "video" else "opus", data=data, timestamp=ts,
                        keyframe=key, received_at=0.0)


def _probe(path: Path) -> dict[str, Any]:
    cp = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,codec_name,width,height:stream_tags=DURATION"
         ":format=duration,format_name", "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    )
    doc: dict[str, Any] = json.loads(cp.stdout)
    return doc


def _stream_seconds(stream: dict[str, Any]) -> float:
    h, m, s = stream["tags"]["DURATION"].split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def _decodes_cleanly(path: Path) -> str:
    # passthrough + 1 ms encoder time base: decode every frame at its own stamp (the defaults resample to 15 fps
    # and warn when network jitter puts two real-time frames into one 1/15 s slot)
    cp = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-fps_mode", "passthrough", "-enc_time_base:v",
                         "1:1000", "-f", "null", "-"],
                        capture_output=True, text=True)
    return "" if cp.returncode == 0 and not cp.stderr.strip() else (cp.stderr or f"exit {cp.returncode}")


def _luma_by_time(path: Path) -> list[tuple[float, float]]:
    """(seconds, mean luma) of every decoded picture: tells whose video the file shows when."""
    out: list[tuple[float, float]] = []
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            y = frame.to_ndarray(format="gray")
            out.append((float(frame.time or 0.0), float(np.median(y))))
    return out


def test_vp8_size_reads_the_keyframe_header() -> None:
    frames = _vp8(40, 3)
    assert recorder.vp8_size(frames[0]) == (W, H)
    assert recorder.vp8_size(frames[1]) is None  # not a keyframe
    assert recorder.vp8_size(b"\x00\x01") is None


def test_floor_change_keeps_the_file_continuous_and_starts_at_keyframes(tmp_path: Path) -> None:
    """Real VP8 + Opus through the recorder on a hand-driven clock: 3 s of the host, then 3 s of a commune
    whose RTP clock is far behind the host's; the file must play 6 s straight with both pictures."""
    now = [100.0]
    sfu, room, host, site = _hall_and_commune()
    hv, ha = _Publisher(room, host, "video"), _Publisher(room, host, "audio")
    sv, sa = _Publisher(room, site, "video"), _Publisher(room, site, "audio")
    closed: list[recorder.RecordingResult] = []
    rec = recorder.start(sfu, "r", tmp_path / "r" / "floor.webm", on_close=closed.append)
    rec.clock = lambda: now[0]
    assert hv.keyframe_requests == 1, "starting a recording must ask the speaker for a keyframe"

    # libvpx makes frame 0 a keyframe anyway: each run starts at frame 1, so it opens with delta pictures
    host_video = _vp8(40, 47, keyframes=(2,))[1:]
    site_video = _vp8(210, 48, keyframes=(3,))[1:]
    audio = _opus(300)

    def run(video: list[bytes], vsrc: _Publisher, asrc: _Publisher, ts0: int, a_off: int, seconds: float,
            step: int = 6000, wrap_at: int | None = None) -> None:
        steps = int(seconds * 50)
        wrap = 0
        for k in range(steps):  # 20 ms steps: audio each step, video every 66.7 ms
            asrc_frame = _frame("audio", audio[(a_off + k) % len(audio)], (ts0 // 90 * 48) + k * 960, True)
            rec.on_frame(cast(Any, asrc), asrc_frame, asrc_frame.timestamp)
            if k % 10 in (0, 3, 7):
                i = (k // 10) * 3 + (0, 3, 7).index(k % 10)
                if i == wrap_at:
                    # a late, older frame: aiortc's timestamp mapper takes it for a wrap and adds 2**32 to it and
                    # to every frame after it; the file must not jump 13 hours
                    wrap = 1 << 32
                    ts = ts0 + (i - 1) * step - 3000 + wrap
                    rec.on_frame(cast(Any, vsrc), _frame("video", video[i - 1], ts, False), ts)
                if i < len(video):
                    data = video[i]
                    ts = ts0 + i * step + wrap
                    rec.on_frame(cast(Any, vsrc), _frame("video", data, ts, recorder.vp8_size(data) is not None), ts)
            now[0] += 0.02

    run(host_video, hv, ha, 9_000_000, 0, 3.0, step=6600)  # the host's clock runs 10 % fast
    sfu.grant_floor("r", "xa")
    # the host keeps publishing while the commune holds the floor: none of it may reach the file
    rec.on_frame(cast(Any, hv), _frame("video", host_video[3], 9_999_999, False), 9_999_999)
    run(site_video, sv, sa, 0, 150, 3.0, wrap_at=30)
    result = recorder.stop(sfu, "r")
    assert result is not None and result.state == "closed" and result.error is None
    assert closed and closed[0].path == result.path
    assert room.recorder is None
    assert sv.keyframe_requests >= 1, "a floor change must ask the new speaker for a keyframe"
    assert result.speakers == ["host", "xa"]
    # only the late, older frame was moved (1 ms after its predecessor): the commune's segment starts after
    # the host's although the host's clock ran ahead of ours
    assert result.shifted == {"video": 1, "audio": 0}, result
    assert result.dropped["video"] >= 3  # the commune's pictures before its keyframe
    assert 5.5 <= result.duration_s <= 6.2, result

    probe = _probe(result.path)
    kinds = {s["codec_type"]: s for s in probe["streams"]}
    assert kinds["video"]["codec_name"] == "vp8" and (kinds["video"]["width"], kinds["video"]["height"]) == (W, H)
    assert kinds["audio"]["codec_name"] == "opus"
    assert 5.5 <= float(probe["format"]["duration"]) <= 6.2, probe
    assert _decodes_cleanly(result.path) == ""
    lumas = _luma_by_time(result.path)
    times = [t for t, _ in lumas]
    assert times == sorted(times) and len(set(times)) == len(times), "timestamps must strictly increase"
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert max(gaps) < 0.5, f"the floor change left a {max(gaps):.2f} s hole"
    early = [v for t, v in lumas if t < 2.5]
    late = [v for t, v in lumas if t > 3.8]
    assert early and late and max(early) < 100 < 150 < min(late), (early[:3], late[:3])


def test_a_write_error_ends_the_recording_not_the_meeting(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    sfu = Sfu()
    room = Room("r")
    sfu.rooms["r"] = room
    host = Peer("p", "host", True, cast(Any, None), None)
    room.peers = {"p": host}
    v = _Publisher(room, host, "video")
    closed: list[recorder.RecordingResult] = []
    rec = recorder.start(sfu, "r", blocker / "floor.webm", on_close=closed.append)
    key = _vp8(40, 1)[0]
    rec.on_frame(cast(Any, v), _frame("video", key, 0, True), 0)  # must not raise
    assert rec.state == "failed" and rec.error and closed and closed[0].state == "failed"
    rec.on_frame(cast(Any, v), _frame("video", key, 6000, True), 6000)  # ignored after failure


# -- stored recordings: page, download, role checks, purge ---------------------------------------------------
def _other_district_commune(inventory: Path) -> str:
    inv = load(inventory)
    operator_district = inv.district_of(inv.get(OPERATOR_SITE))
    for s in inv.by_level("commune"):
        d = inv.district_of(s)
        if d is not None and operator_district is not None and d.id != operator_district.id:
            return s.id
    raise AssertionError("reference inventory has one district only")


def _meeting(db_url: str, settings: Settings, participant: str) -> int:
    engine = make_engine(db_url)
    try:
        with session_scope(make_sessionmaker(engine)) as s:
            start = future(days=3)
            m = svc.create(s, settings, MeetingIn(title="Họp ghi hình", start=start, end=start + timedelta(hours=1),
                                                  host_site="11", participants=[participant]), "test")
            return m.id
    finally:
        engine.dispose()


@pytest.fixture
def stored(db_url: str, reference_inventory: Path, state_dir: Path, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A migrated DB (SQLite or PostgreSQL) with one meeting the operator may NOT see, and an app on it."""
    tokens = prepare_db(db_url, reference_inventory)
    settings = Settings.load(db_url, recordings_dir=str(tmp_path / "rec"), recording_retention_days=30)
    meeting_id = _meeting(db_url, settings, _other_district_commune(reference_inventory))
    from meeting.api.app import create_app

    with TestClient(create_app(settings)) as client:
        yield {"settings": settings, "client": client, "tokens": tokens, "meeting_id": meeting_id, "url": db_url}


def _store(client: TestClient, settings: Settings, meeting_id: int, ended: datetime, body: bytes) -> int:
    with make_sessionmaker(client.app.state.engine)() as s:  # type: ignore[attr-defined]
        row, path = recordings.begin(s, settings, meeting_id)
        path.write_bytes(body)
        recordings.finish(s, row.id, {"state": "closed", "ended_at": ended.isoformat(), "duration_s": 20.0,
                                      "size_bytes": len(body), "frames": {"video": 300}})
        s.commit()
        return row.id


def test_recordings_listed_downloadable_with_role_checks(stored: dict[str, Any]) -> None:
    client, settings, tokens, mid = stored["client"], stored["settings"], stored["tokens"], stored["meeting_id"]
    body = b"\x1aE\xdf\xa3" + os.urandom(2048)
    rid = _store(client, settings, mid, datetime.now(UTC), body)
    h = {"Authorization": f"Bearer {tokens['secretariat']}"}
    listed = client.get(f"/api/v1/meetings/{mid}/recordings", headers=h).json()
    assert [r["id"] for r in listed] == [rid] and listed[0]["download"] == f"/api/v1/recordings/{rid}/file"
    assert listed[0]["duration_s"] == 20.0 and listed[0]["size_bytes"] == len(body)
    r = client.get(f"/api/v1/recordings/{rid}/file", headers=h)
    assert r.status_code == 200 and r.content == body and r.headers["content-type"] == "video/webm"
    page = client.get(f"/meetings/{mid}", headers=h)
    assert page.status_code == 200 and 'id="recordings"' in page.text and f"/api/v1/recordings/{rid}/file" in page.text
    assert "Bản ghi hình" in page.text and "0:20" in page.text
    en = client.get(f"/meetings/{mid}?lang=en", headers=h)
    assert "Recordings" in en.text and "Download" in en.text
    # a site operator of another district may not see the meeting, so not its recording either
    op = {"Authorization": f"Bearer {tokens['operator']}"}
    assert client.get(f"/api/v1/recordings/{rid}/file", headers=op).status_code == 403
    assert client.get(f"/api/v1/meetings/{mid}/recordings", headers=op).status_code == 403
    assert client.get(f"/api/v1/recordings/{rid}/file").status_code == 401
    assert client.get(f"/api/v1/recordings/{rid + 1000}/file", headers=h).status_code == 404
    with make_sessionmaker(client.app.state.engine)() as s:  # type: ignore[attr-defined]
        site_token = auth.issue_site_token(s, OPERATOR_SITE)
        s.commit()
    assert client.get(f"/api/v1/recordings/{rid}/file",
                      headers={"Authorization": f"Bearer {site_token}"}).status_code == 401


def test_purge_command_deletes_only_files_past_retention(stored: dict[str, Any], state_dir: Path) -> None:
    client, settings, mid = stored["client"], stored["settings"], stored["meeting_id"]
    old = _store(client, settings, mid, datetime.now(UTC) - timedelta(days=31), b"old" * 100)
    new = _store(client, settings, mid, datetime.now(UTC) - timedelta(days=29), b"new" * 100)
    env = {**os.environ, "LIENTHONG_STATE": str(state_dir), "LIENTHONG_DB": stored["url"],
           "LIENTHONG_RECORDINGS_DIR": settings.recordings_dir, "LIENTHONG_RECORDING_RETENTION_DAYS": "30"}
    cmd = [sys.executable, "-m", "meeting.cli", "recordings", "purge", "--json"]
    cp = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, cwd=REPO)
    assert cp.returncode == 0, cp.stderr
    doc = json.loads(cp.stdout)
    assert doc["summary"] == {"purged": 1, "bytes": 300, "retention_days": 30}
    assert [i["recording_id"] for i in doc["items"]] == [old] and doc["items"][0]["removed"] is True
    with make_sessionmaker(client.app.state.engine)() as s:  # type: ignore[attr-defined]
        rows = {r.id: r for r in s.scalars(select(Recording))}
    base = settings.recordings_path()
    assert rows[old].status == "purged" and not (base / rows[old].file_name).exists()
    assert rows[new].status == "done" and (base / rows[new].file_name).read_bytes() == b"new" * 100
    listed = client.get(f"/api/v1/meetings/{mid}/recordings",
                        headers={"Authorization": f"Bearer {stored['tokens']['admin']}"}).json()
    assert {r["id"]: r["download"] for r in listed} == {old: None, new: f"/api/v1/recordings/{new}/file"}
    # running it again purges nothing; a negative retention is refused as bad input (exit 2, no traceback)
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, cwd=REPO)
    assert json.loads(again.stdout)["summary"]["purged"] == 0
    bad = subprocess.run([*cmd[:-1], "--days", "-1"], capture_output=True, text=True, env=env, timeout=120,
                         cwd=REPO)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "âm" in bad.stderr


def test_start_and_stop_through_the_api(stored: dict[str, Any]) -> None:
    """The secretariat starts and stops recording a live room; the row is complete when stop returns."""
    client, mid, tokens = stored["client"], stored["meeting_id"], stored["tokens"]
    h = {"Authorization": f"Bearer {tokens['secretariat']}"}
    r = client.post(f"/api/v1/meetings/{mid}/recording/start", headers=h)
    assert r.status_code == 409, r.text  # nobody is connected: the meeting is not live
    sfu: Sfu = client.app.state.sfu  # type: ignore[attr-defined]
    room = Room(str(mid))
    sfu.rooms[room.room_id] = room
    host = Peer("p", "host", True, cast(Any, None), None)
    room.peers = {"p": host}
    video, audio = _Publisher(room, host, "video"), _Publisher(room, host, "audio")
    try:
        started = client.post(f"/api/v1/meetings/{mid}/recording/start", headers=h)
        assert started.status_code == 200 and started.json()["status"] == "recording", started.text
        assert video.keyframe_requests == 1
        assert client.post(f"/api/v1/meetings/{mid}/recording/start", headers=h).status_code == 409
        rec = room.recorder
        assert isinstance(rec, recorder.Recorder)
        pictures, sound = _vp8(40, 30), _opus(100)
        for i in range(100):
            rec.on_frame(cast(Any, audio), _frame("audio", sound[i], i * 960, True), i * 960)
            if i % 3 == 0 and i // 3 < len(pictures):
                data = pictures[i // 3]
                rec.on_frame(cast(Any, video), _frame("video", data, i // 3 * 6000, i == 0), i // 3 * 6000)
        stopped = client.post(f"/api/v1/meetings/{mid}/recording/stop", headers=h)
        assert stopped.status_code == 200, stopped.text
        doc = stopped.json()
        assert doc["status"] == "done" and doc["size_bytes"] > 0 and 1.5 <= doc["duration_s"] <= 2.2, doc
        file = client.get(doc["download"], headers=h)
        assert file.status_code == 200 and file.content[:4] == b"\x1aE\xdf\xa3"  # EBML: a WebM file
        assert client.post(f"/api/v1/meetings/{mid}/recording/stop", headers=h).status_code == 404
    finally:
        sfu.rooms.pop(room.room_id, None)


# -- the real thing: aiortc publishers in a namespace, 20 s recorded ------------------------------------------
def test_twenty_seconds_of_a_real_meeting_record_and_play_back(
    media_netns: MediaNetns, tmp_path: Path, reference_inventory: Path, state_dir: Path
) -> None:
    db_url = f"sqlite:///{tmp_path / 'lienthong.db'}"
    tokens = prepare_db(db_url, reference_inventory)
    settings = Settings.load(db_url, recordings_dir=str(tmp_path / "rec"))
    meeting_id = _meeting(db_url, settings, "district:096")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cp = subprocess.run(
        ["ip", "netns", "exec", media_netns.ns, sys.executable, "-m", "tests.media.rec_scenarios",
         str(tmp_path / "rec"), "20", db_url, str(meeting_id)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=180,
    )
    lines = [ln for ln in cp.stdout.splitlines() if ln.startswith("{")]
    assert cp.returncode == 0 and lines, f"{cp.stdout[-3000:]}\n{cp.stderr[-5000:]}"
    r = json.loads(lines[-1])
    print("recording scenario:", json.dumps(r))
    # nothing was decoded or encoded in the SFU process, and the muxer streams carry no codec context
    assert r["codecs"]["decoders"] == 0 and r["codecs"]["encoders"] == 0, r["codecs"]
    assert r["codecs"]["packer_contexts_opened"] == 0
    assert r["streams_without_codec_context"] == [True, True]
    assert r["stopped_twice"] is True
    res = r["result"]
    assert res["state"] == "closed" and res["speakers"] == ["host", "xa-rec"], res
    # a frame the jitter buffer released out of order is written in arrival order, 1 ms after its predecessor
    for kind in ("video", "audio"):
        assert res["shifted"][kind] <= 0.05 * res["frames"][kind], res
    path = Path(res["path"])
    probe = _probe(path)
    kinds = {s["codec_type"]: s for s in probe["streams"]}
    assert set(kinds) == {"video", "audio"} and kinds["video"]["codec_name"] == "vp8"
    assert kinds["audio"]["codec_name"] == "opus"
    # the file starts at the host's first keyframe after the start (a PLI round trip, longer on a loaded machine)
    for kind, stream in kinds.items():
        assert 15.0 <= _stream_seconds(stream) <= 20.5, (kind, stream)
    assert 15.0 <= float(probe["format"]["duration"]) <= 20.5
    assert _decodes_cleanly(path) == ""
    lumas = _luma_by_time(path)
    # every muxed picture decodes, and nearly everything the floor-holders published is in the file (what is
    # missing: pictures before the first keyframe and before the commune's keyframe)
    assert len(lumas) == res["frames"]["video"], (len(lumas), res["frames"])
    assert res["frames"]["video"] >= 0.85 * r["offered"]["video"] > 0, (res, r["offered"])
    assert res["frames"]["audio"] >= 0.85 * r["offered"]["audio"] > 0, (res, r["offered"])
    grant = r["grant_at_s"]
    early = [v for t, v in lumas if t < grant - 1.5]
    late = [v for t, v in lumas if t > grant + 1.5]
    assert early and late and np.median(early) < 100 and np.median(late) > 150, "both speakers in the file"
    # the row is complete and the meeting page lists it with a download link
    from meeting.api.app import create_app

    with TestClient(create_app(settings)) as client:
        h = {"Authorization": f"Bearer {tokens['admin']}"}
        listed = client.get(f"/api/v1/meetings/{meeting_id}/recordings", headers=h).json()
        assert len(listed) == 1 and listed[0]["status"] == "done", listed
        assert 15.0 <= listed[0]["duration_s"] <= 20.5 and listed[0]["size_bytes"] == path.stat().st_size
        got = client.get(listed[0]["download"], headers=h)
        assert got.status_code == 200 and got.content == path.read_bytes()
        page = client.get(f"/meetings/{meeting_id}", headers=h)
        assert listed[0]["download"] in page.text


def test_a_new_speakers_audio_starts_right_after_the_last_frame_without_shifting(tmp_path: Path) -> None:
    """When the previous speaker's audio ran ahead of the wall clock, the next segment starts right after its
    last frame. That start went through float seconds and back (``int(x / 48000 * 48000)`` is ``x - 1`` for some
    x), which put the new speaker's first frame 1 tick early and so shifted every frame of its segment."""
    audio = _opus(120)
    video = _vp8(40, 2)
    hit = 0
    now = [100.0]
    for n in range(60, 120):  # the host's segment length varies where its audio ends (after its first second)
        now[0] = 100.0
        sfu, room, host, site = _hall_and_commune()
        hv, ha = _Publisher(room, host, "video"), _Publisher(room, host, "audio")
        sa = _Publisher(room, site, "audio")
        rec = recorder.start(sfu, "r", tmp_path / f"{n}.webm")
        rec.clock = lambda: now[0]
        rec.on_frame(cast(Any, hv), _frame("video", video[0], 0, True), 0)
        for k in range(n):  # the host's audio clock runs 10 % fast: its segment ends ahead of the wall clock
            f = _frame("audio", audio[k], k * 1056, True)
            rec.on_frame(cast(Any, ha), f, f.timestamp)
            now[0] += 0.02
        ends = rec._tracks["audio"].last_pts + 960
        hit += int(ends / 48000 * 48000) != ends
        sfu.grant_floor("r", "xa")
        for k in range(60):
            f = _frame("audio", audio[k], 5_000_000 + k * 960, True)
            rec.on_frame(cast(Any, sa), f, f.timestamp)
            now[0] += 0.02
        result = recorder.stop(sfu, "r")
        assert result is not None and result.state == "closed", result
        assert result.shifted["audio"] == 0, (n, ends, result)
    assert hit, "no segment end in this range goes wrong through float seconds: the test shows nothing"
