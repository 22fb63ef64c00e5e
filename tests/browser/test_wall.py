"""The hall wall and the participant pages without a browser: thumbnail checks, the interval from the budget, the
pages' access rules, token redaction in the access log, and thumbnails arriving over the real signaling socket."""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import av
import pytest
from fastapi.testclient import TestClient

from meeting.agent.thumbs import card_frame, encode_jpeg
from meeting.api.deps import LANG_COOKIE
from meeting.api.routes import wall
from meeting.services import auth
from meeting.settings import Settings
from tests.meeting.conftest import OPERATOR_SITE, Service, meeting_body, prepare_db


@pytest.fixture
def service(tmp_path: Path, reference_inventory: Path, state_dir: Path) -> Iterator[Service]:
    """The app on SQLite only: nothing here depends on the database engine (tests/meeting covers both)."""
    from meeting.api.app import create_app

    url = f"sqlite:///{tmp_path / 'wall.db'}"
    tokens = prepare_db(url, reference_inventory)
    with TestClient(create_app(Settings.load(url))) as client:
        yield Service(Settings.load(url), client, tokens)


def _jpeg(width: int, height: int) -> bytes:
    frame = av.VideoFrame(width, height, "yuv420p")
    for plane in frame.planes:
        plane.update(bytes([128]) * plane.buffer_size)
    small = frame.reformat(format="yuvj420p")
    ctx = av.CodecContext.create("mjpeg", "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuvj420p"
    ctx.time_base = __import__("fractions").Fraction(1, 1)
    small.pts = 0
    return b"".join(bytes(p) for p in [*ctx.encode(small), *ctx.encode(None)])


def test_agent_thumbnail_is_a_small_jpeg_of_160x90() -> None:
    data = encode_jpeg(card_frame())
    assert data[:2] == b"\xff\xd8" and len(data) <= wall.MAX_JPEG_BYTES
    assert wall.jpeg_size(data) == (160, 90)
    decoded = next(av.open(__import__("io").BytesIO(data)).decode(video=0))
    assert (decoded.width, decoded.height) == (160, 90)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (12345, "base64 string"),
        ("not*base64!", "base64 string"),
        (base64.b64encode(b"GIF89a" + b"\0" * 40).decode(), "must be a JPEG"),
        (base64.b64encode(b"\xff\xd8" + b"\0" * (13 * 1024)).decode(), "too large"),
        ("A" * 20000, "too large"),
    ],
)
def test_bad_thumbnails_are_refused_with_a_reason(payload: Any, reason: str) -> None:
    with pytest.raises(wall.ThumbRejected) as err:
        wall.decode_thumb(payload)
    assert reason in err.value.render("en")
    assert err.value.render("vi") != err.value.render("en")


def test_thumbnail_size_limit_is_read_from_the_jpeg_header() -> None:
    ok = _jpeg(160, 90)
    assert wall.decode_thumb(base64.b64encode(ok).decode()) == ok
    assert wall.decode_thumb(base64.b64encode(_jpeg(120, 68)).decode())
    with pytest.raises(wall.ThumbRejected) as err:
        wall.decode_thumb(base64.b64encode(_jpeg(320, 180)).decode())
    assert "320×180" in err.value.render("en")


@pytest.mark.parametrize(
    ("sites", "avg", "budget", "want"),
    [(0, 6144, 2000, 0.0), (1, 6144, 2000, 1.0), (10, 6144, 2000, 1.0), (129, 6144, 2000, 3.17),
     (129, 3000, 2000, 1.55), (10, 6144, 100, 4.92)],
)
def test_interval_keeps_all_sites_within_the_budget(sites: int, avg: float, budget: float, want: float) -> None:
    got = wall.interval_for(sites, avg, budget)
    assert got == want
    if sites:
        assert got >= wall.MIN_INTERVAL_S
        assert got == wall.MIN_INTERVAL_S or sites * avg * 8 / 1000 / got <= budget * 1.01


def test_budget_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIENTHONG_WALL_BUDGET_KBPS", "500")
    assert wall.budget_kbps() == 500
    monkeypatch.setenv("LIENTHONG_WALL_BUDGET_KBPS", "lots")
    assert wall.budget_kbps() == wall.DEFAULT_BUDGET_KBPS


def test_store_drops_thumbnails_sent_faster_than_half_the_interval() -> None:
    store = wall.WallStore()
    store.intervals[1] = 2.0
    assert store.put(1, "03160", b"a" * 100)
    assert not store.put(1, "03160", b"b" * 100)  # 0 s later: a client ignoring `thumbs` cannot flood
    store.thumbs[1]["03160"].mono -= 1.1
    assert store.put(1, "03160", b"c" * 100)
    assert store.latest(1)["03160"].received == 2 and store.latest(1)["03160"].total_bytes == 200


# ----- pages and API through the app --------------------------------------------------------------------
def _meeting(svc: Service) -> dict[str, Any]:
    start = datetime.now(UTC).replace(microsecond=0)
    body = meeting_body(start.astimezone(), hours=1, participants=[OPERATOR_SITE])
    r = svc.client.post("/api/v1/meetings", json=body, headers=svc.h("secretariat"))
    assert r.status_code == 201, r.text
    m: dict[str, Any] = r.json()
    return m


def _join_token(svc: Service, meeting_id: int, site: str = OPERATOR_SITE) -> str:
    with svc.session() as s:
        site_token = auth.issue_site_token(s, site)
        s.commit()
    r = svc.client.post(f"/api/v1/meetings/{meeting_id}/join-token", headers={"Authorization": f"Bearer {site_token}"})
    assert r.status_code == 200, r.text
    token: str = r.json()["token"]
    return token


def test_join_page_checks_its_token_and_never_logs_it(service: Service, caplog: pytest.LogCaptureFixture) -> None:
    m = _meeting(service)
    token = _join_token(service, m["id"])
    with caplog.at_level(logging.INFO, logger="meeting.access"):
        page = service.client.get(f"/join/{token}")
        expired = service.client.get("/join/ljt.eyJtIjoxLCJzIjoiMDMxNjAiLCJleHAiOjF9.AAAA")
    assert page.status_code == 200
    assert f'"meeting": {m["id"]}' in page.text and '"ice_servers": []' in page.text  # no TURN: empty, explicit
    assert token not in page.text  # the script reads it from the address bar
    assert expired.status_code == 403
    paths = [getattr(r, "path", "") for r in caplog.records if r.name == "meeting.access"]
    assert "/join/…" in paths
    assert all(token not in r.getMessage() and token not in str(getattr(r, "path", "")) for r in caplog.records)
    en = service.client.get(f"/join/{token}", headers={"Cookie": f"{LANG_COOKIE}=en"})
    assert "Raise hand to speak" in en.text and "Giơ tay" not in en.text


def test_expired_join_link_says_so(service: Service) -> None:
    m = _meeting(service)
    with service.session() as s:
        key = auth.signing_key(s)
        s.commit()
    token, _ = auth.make_join_token(key, m["id"], OPERATOR_SITE, -5)
    r = service.client.get(f"/join/{token}")
    assert r.status_code == 410 and "hết hạn" in r.text


def test_kiosk_page_is_public_and_knows_its_site(service: Service) -> None:
    r = service.client.get(f"/kiosk/{OPERATOR_SITE}")
    assert r.status_code == 200 and '"site": "03160"' in r.text and "kiosk.js" in r.text
    assert service.client.get("/kiosk/99999").status_code == 404


def test_wall_over_the_signaling_socket(service: Service) -> None:
    m = _meeting(service)
    jpeg = _jpeg(160, 90)
    with service.client.websocket_connect(f"/ws/meetings/{m['id']}") as ws:
        ws.send_json({"type": "auth", "token": _join_token(service, m["id"])})
        assert ws.receive_json()["type"] == "welcome"
        ws.send_json({"type": "thumb", "jpeg": base64.b64encode(_jpeg(320, 180)).decode()})
        err = ws.receive_json()
        assert err["type"] == "error" and err["code"] == "ThumbRejected" and "320×180" in err["reason_en"]
        ws.send_json({"type": "thumb", "jpeg": base64.b64encode(jpeg).decode()})
        ws.send_json({"type": "ping"})
        assert ws.receive_json() == {"type": "pong"}
        listed = service.client.get(f"/api/v1/meetings/{m['id']}/wall", headers=service.h("secretariat"))
        assert listed.status_code == 200 and listed.headers["cache-control"] == "no-store"
        (item,) = listed.json()
        assert item["site"] == OPERATOR_SITE and item["name"] == "Mường Nhé" and item["bytes"] == len(jpeg)
        pic = service.client.get(f"/api/v1/meetings/{m['id']}/wall/{OPERATOR_SITE}.jpg", headers=service.h("admin"))
        assert pic.content == jpeg and pic.headers["content-type"] == "image/jpeg"
        assert pic.headers["cache-control"] == "no-store"
        for role in ("engineer", "operator", None):
            assert service.client.get(f"/api/v1/meetings/{m['id']}/wall", headers=service.h(role)).status_code in (
                401, 403)
        assert service.client.get(f"/api/v1/meetings/{m['id']}/wall/11.jpg",
                                  headers=service.h("admin")).status_code == 404
    time.sleep(0.2)  # the socket's finally ran: a site that left is off the wall
    assert service.client.get(f"/api/v1/meetings/{m['id']}/wall", headers=service.h("admin")).json() == []


def test_wall_page_is_for_the_secretariat(service: Service) -> None:
    m = _meeting(service)
    assert "wall.js" in service.client.get(f"/meetings/{m['id']}/wall", headers=service.h("secretariat")).text
    assert service.client.get(f"/meetings/{m['id']}/wall", headers=service.h("operator")).status_code == 403


def test_thumbs_pace_is_told_at_once_then_coalesced(monkeypatch: pytest.MonkeyPatch) -> None:
    """A joining site hears its interval at once; the others get one update a second later, only if it changed."""
    import asyncio
    from dataclasses import dataclass as _dc
    from types import SimpleNamespace

    from meeting.media.sfu import Sfu
    from meeting.media.signaling import SignalingSession

    monkeypatch.setenv("LIENTHONG_WALL_BUDGET_KBPS", "10")  # tiny budget: every join changes the interval
    heard: dict[str, list[float]] = {}

    @_dc
    class Entry:
        session: SignalingSession

    async def run() -> None:
        state = SimpleNamespace()
        registry: dict[tuple[str, str], Any] = {}
        for site in ("03160", "03163", "03166"):
            async def send(msg: dict[str, Any], site: str = site) -> None:
                heard.setdefault(site, []).append(msg["interval_s"])

            session = SignalingSession(Sfu(), "7", site, send)
            session.peer_id = f"peer-{site}"
            registry[("7", site)] = Entry(session)
            await wall.announce(state, registry, "7", site)
        assert heard == {"03160": [4.92], "03163": [9.83], "03166": [14.75]}
        await asyncio.sleep(wall.REANNOUNCE_S + 0.3)
        assert heard == {"03160": [4.92, 14.75], "03163": [9.83, 14.75], "03166": [14.75]}
        assert not wall.store(state).pending

    asyncio.run(run())
