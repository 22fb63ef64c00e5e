"""The media plane's door: the signaling WebSocket ``/ws/meetings/{id}`` (the agent's schedule: routes/agents.py).

The WebSocket is accepted first and authenticated second, so a refused client always learns why: it gets an
``error`` message (Vietnamese and English) and a close code from :data:`CLOSE_CODES` (browsers never see the
reason of a refused HTTP upgrade). Two ways in:

* a page session cookie (same origin only): admin and secretariat users are the host hall of the meeting; an
  operator joins as their own site if it is invited;
* a short-lived per-meeting join token (``POST /api/v1/meetings/{id}/join-token`` with the site token), sent
  as the **first message** ``{"type": "auth", "token": "ljt…"}`` — never in the URL, so no access log or proxy
  ever records it. The meeting's host site joining with a join token is the host hall (its room PC's agent).

After that the socket carries :mod:`meeting.media.signaling` messages. One live session per (meeting, site): a
site that reconnects (link back, agent restarted) replaces its previous session, whose socket is closed with
4409, so the SFU never keeps a ghost of a room PC that came back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocketState

from meeting.api.deps import SESSION_COOKIE
from meeting.api.routes import wall
from meeting.errors import InvalidToken
from meeting.i18n import translate
from meeting.media.sfu import Sfu
from meeting.media.shards import ShardedSfu, open_session
from meeting.media.signaling import SignalingSession
from meeting.models import Meeting, MeetingStatus, SiteToken, UserRole, utcnow
from meeting.services import attendance, auth
from meeting.services.live import get_live
from meeting.settings import Settings

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["agents"])
"""No HTTP routes here any more (the agent's schedule moved to routes/agents.py); kept because the route-policy
test walks every route module's ``router``."""
ws_router = APIRouter()

AUTH_TIMEOUT_S = 10.0

CLOSE_CODES: dict[str, int] = {
    "bad_request": 4400,
    "not_authenticated": 4401,
    "invalid_token": 4401,
    "expired_token": 4401,
    "site_token_revoked": 4401,
    "not_invited": 4403,
    "wrong_meeting": 4403,
    "forbidden_role": 4403,
    "bad_origin": 4403,
    "meeting_not_found": 4404,
    "auth_timeout": 4408,
    "replaced": 4409,
    "meeting_cancelled": 4410,
    "removed": 4412,
    "ended": 4413,
}
"""Refusal code -> WebSocket close code (4000 + the HTTP status it corresponds to). Documented in docs/media.md."""

REASONS: dict[str, str] = {
    "bad_request": "Thông điệp đầu tiên phải có type 'auth' và token",
    "not_authenticated": "Cần đăng nhập hoặc mã tham gia cuộc họp",
    "invalid_token": "Mã tham gia không hợp lệ",
    "expired_token": "Mã tham gia đã hết hạn",
    "site_token_revoked": "Mã điểm cầu đã bị thu hồi",
    "not_invited": "Điểm cầu không tham dự cuộc họp này",
    "wrong_meeting": "Mã tham gia không dành cho cuộc họp này",
    "forbidden_role": "Bạn không có quyền tham gia phòng họp này",
    "bad_origin": "Kết nối từ trang web khác bị từ chối",
    "meeting_not_found": "Không có cuộc họp này",
    "auth_timeout": "Hết thời gian chờ xác thực",
    "replaced": "Điểm cầu đã kết nối lại từ một phiên khác",
    "meeting_cancelled": "Cuộc họp đã bị hủy",
    "removed": "Điểm cầu đã được mời ra khỏi buổi họp này",
    "ended": "Buổi họp đã kết thúc",
}
"""Refusal code -> Vietnamese msgid (English from the catalog, see meeting.i18n)."""


class Refused(Exception):
    """Why a socket may not join; ``code`` is a key of :data:`CLOSE_CODES`."""

    def __init__(self, code: str, site: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.site = site


@dataclass(frozen=True)
class Identity:
    site_id: str
    is_host: bool
    via: str  # "session:<username>" | "join-token"


def prepare_media(sessions: Any) -> None:
    """Called once at startup: create the join-token key before 129 agents ask for tokens in the same second
    (``auth.signing_key`` creates it on first use, and concurrent first uses race on its primary key), and keep
    aioice's per-candidate-pair INFO lines out of the service log (thousands per meeting start)."""
    with sessions() as db:
        auth.signing_key(db)
        stale = attendance.close_stale(db)  # spans a previous process left open end at their last sign of life
        db.commit()
    if stale:
        logger.info("attendance: closed %d span(s) left open by the previous server process", stale)
    for name in ("aioice", "aiortc"):
        if logging.getLogger(name).getEffectiveLevel() < logging.WARNING:
            logging.getLogger(name).setLevel(logging.WARNING)


# ----- authentication ---------------------------------------------------------------------------------
def _same_origin(ws: WebSocket) -> bool:
    """Cookie logins only from our own pages: a foreign page must not ride the user's cookie (CSWSH)."""
    origin = ws.headers.get("origin")
    if origin is None:
        return True  # not a browser
    return urlsplit(origin).netloc.lower() == ws.headers.get("host", "").lower()


def _check_meeting(m: Meeting | None, site_id: str | None) -> Meeting:
    if m is None:
        raise Refused("meeting_not_found", site_id)
    if m.status == MeetingStatus.CANCELLED.value:
        raise Refused("meeting_cancelled", site_id)
    return m


class _Auth:
    """DB checks for one socket, run in a worker thread (the event loop carries everyone's media)."""

    def __init__(self, app_state: Any, settings: Settings) -> None:
        self._sessions = app_state.sessions
        self._settings = settings

    def by_session(self, cookie: str, meeting_id: int) -> Identity:
        with self._sessions() as db:
            found = auth.session_user(db, cookie)
            if found is None:
                raise Refused("not_authenticated")
            user, _ = found
            m = _check_meeting(db.get(Meeting, meeting_id), user.site_id)
            role = UserRole(user.role)
            if role in (UserRole.ADMIN, UserRole.SECRETARIAT):
                return Identity(m.host_site_id, True, f"session:{user.username}")
            if role is UserRole.OPERATOR and user.site_id:
                if user.site_id not in m.site_ids:
                    raise Refused("not_invited", user.site_id)
                return Identity(user.site_id, user.site_id == m.host_site_id, f"session:{user.username}")
            raise Refused("forbidden_role", user.site_id)

    def by_join_token(self, token: str, meeting_id: int) -> Identity:
        with self._sessions() as db:
            key = auth.signing_key(db)
            db.commit()
            try:
                claims = auth.verify_join_token(key, token)
            except InvalidToken as exc:
                raise Refused("expired_token" if "hết hạn" in exc.message else "invalid_token") from None
            m = _check_meeting(db.get(Meeting, meeting_id), claims.site_id)
            if claims.meeting_id != meeting_id:
                raise Refused("wrong_meeting", claims.site_id)
            if claims.site_id not in m.site_ids:
                raise Refused("not_invited", claims.site_id)
            tokens = list(db.scalars(select(SiteToken).where(SiteToken.site_id == claims.site_id)))
            issued = datetime.fromtimestamp(claims.expires - self._settings.join_token_ttl_s, UTC)
            revoked = [t.revoked_at for t in tokens if t.revoked_at is not None]
            late = bool(revoked) and max(revoked) >= issued  # revoked after it was issued (seconds: err safe)
            if late or not any(t.revoked_at is None for t in tokens):
                raise Refused("site_token_revoked", claims.site_id)
            return Identity(claims.site_id, claims.site_id == m.host_site_id, "join-token")


async def _authenticate(ws: WebSocket, meeting_id: int, checker: _Auth) -> Identity:
    cookie = ws.cookies.get(SESSION_COOKIE)
    if cookie:
        if not _same_origin(ws):
            raise Refused("bad_origin")
        return await run_in_threadpool(checker.by_session, cookie, meeting_id)
    try:
        first = await asyncio.wait_for(ws.receive_text(), AUTH_TIMEOUT_S)
    except TimeoutError:
        raise Refused("auth_timeout") from None
    try:
        message = json.loads(first)
    except ValueError:
        raise Refused("bad_request") from None
    if not isinstance(message, dict) or message.get("type") != "auth" or not isinstance(message.get("token"), str):
        raise Refused("bad_request")
    return await run_in_threadpool(checker.by_join_token, message["token"], meeting_id)


# ----- the socket -------------------------------------------------------------------------------------
def _error(code: str) -> dict[str, Any]:
    msgid = REASONS[code]
    return {"type": "error", "code": code, "reason": translate(msgid, "vi"), "reason_en": translate(msgid, "en")}


async def _refuse(ws: WebSocket, code: str) -> None:
    with contextlib.suppress(Exception):
        await ws.send_json(_error(code))
        await ws.close(code=CLOSE_CODES[code], reason=code)


@dataclass
class _Live:
    ws: WebSocket
    session: SignalingSession
    end_reason: str | None = None
    """Set by live control before it closes the socket: the attendance span ends with it (removed, meeting_ended)."""
    gone_since: datetime | None = None
    """Set by the ticker while the site is silent with its socket still open: its span is already closed."""

    async def refuse(self, code: str) -> None:
        """Tell the site why (``error`` message) and close with the code's close code (live control: 4412/4413)."""
        await _refuse(self.ws, code)


def _registry(ws: WebSocket) -> dict[tuple[str, str], _Live]:
    state = ws.app.state
    if not hasattr(state, "signaling"):
        state.signaling = {}
    live: dict[tuple[str, str], _Live] = state.signaling
    return live


@ws_router.websocket("/ws/meetings/{meeting_id}")
async def meeting_socket(ws: WebSocket, meeting_id: int) -> None:
    """Signaling for one site in one meeting (see the module docstring for how to authenticate)."""
    sfu: Sfu | ShardedSfu = ws.app.state.sfu
    client = f"{ws.client.host}:{ws.client.port}" if ws.client else "?"
    await ws.accept()
    try:
        who = await _authenticate(ws, meeting_id, _Auth(ws.app.state, ws.app.state.settings))
    except Refused as refused:
        logger.warning("ws meeting %s from %s refused: %s (site %s)", meeting_id, client, refused.code,
                       refused.site or "?")
        await _refuse(ws, refused.code)
        return
    except WebSocketDisconnect:
        return
    room = str(meeting_id)
    control = get_live(ws.app.state)
    try:
        await control.meeting(meeting_id)
    except Exception:  # the socket must still work if live control cannot load (it logs its own trouble)
        logger.exception("ws meeting %s: live state not available", meeting_id)
    barred = control.refusal(meeting_id, who.site_id)
    if barred is not None:
        logger.info("ws meeting %s: site %s refused: %s", meeting_id, who.site_id, barred)
        await _refuse(ws, barred)
        return
    logger.info("ws meeting %s: site %s joined via %s from %s%s", meeting_id, who.site_id, who.via, client,
                " (host)" if who.is_host else "")

    async def send(message: dict[str, Any]) -> None:
        if ws.application_state == WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await ws.send_json(message)

    async def lost() -> None:  # its SFU worker died: the site rejoins (the agent's backoff) on a live one
        with contextlib.suppress(Exception):
            await ws.close(code=1011, reason="sfu_worker_lost")

    # Room agents may go to an SFU worker process; browsers (they send Origin) and the host hall stay here.
    session = open_session(sfu, room, who.site_id, send, is_host=who.is_host, hooks=control,
                           browser=ws.headers.get("origin") is not None, lost=lost)
    live = _registry(ws)
    previous = live.get((room, who.site_id))
    entry = live[(room, who.site_id)] = _Live(ws, session)
    sessions = ws.app.state.sessions
    previous_silent_since = _silent_since(sfu, room, who.site_id) if previous is not None else None
    sfu.forget_life(room, who.site_id)  # this session is "connecting" until its own peer shows life
    if previous is not None:
        logger.info("ws meeting %s: site %s reconnected, closing its previous session", meeting_id, who.site_id)
        await previous.session.close()
        await _refuse(previous.ws, "replaced")
    ticker: asyncio.Task[None] | None = None
    try:
        if previous_silent_since is not None and previous is not None and previous.gone_since is None:
            # The old session went silent (cut link) before this one came: a drop and a gap, not a hand-over.
            logger.info("ws meeting %s: site %s had been silent since %s", meeting_id, who.site_id,
                        previous_silent_since.isoformat(timespec="seconds"))
            await run_in_threadpool(_attend, sessions, attendance.left, meeting_id, who.site_id, "dropped",
                                    previous_silent_since)
            with contextlib.suppress(Exception):
                await control.site_left(meeting_id, who.site_id, "dropped")
        await run_in_threadpool(_attend, sessions, attendance.joined, meeting_id, who.site_id)
        ticker = asyncio.create_task(_attendance_ticker(sessions, sfu, room, meeting_id, who.site_id, entry,
                                                        control))
        try:
            await control.site_joined(meeting_id, who.site_id)
        except Exception:  # live control's event log must never take a room out of its meeting
            logger.exception("ws meeting %s: cannot log the join of site %s", meeting_id, who.site_id)
        await session.open()
        while True:
            text = await ws.receive_text()
            try:
                message = json.loads(text)
            except ValueError:
                message = None
            if isinstance(message, dict) and message.get("type") == "thumb":
                await _thumb(ws, session, meeting_id, message)
                continue
            await session.handle(message)
            if isinstance(message, dict) and message.get("type") == "offer" and session.peer_id is not None:
                await wall.announce(ws.app.state, live, room, who.site_id)  # hall-wall thumbnail pace
    except WebSocketDisconnect:
        pass
    finally:
        if ticker is not None:
            ticker.cancel()
        said_leave = session.closed  # the site sent "leave" before its socket went away
        silent_since = _silent_since(sfu, room, who.site_id)
        current = live.get((room, who.site_id))
        replaced = current is not None and current.session is not session
        if current is not None and current.session is session:
            del live[(room, who.site_id)]
            wall.site_left(ws.app.state, meeting_id, who.site_id)
            await wall.announce(ws.app.state, live, room)
        await session.close()
        if not replaced:  # a replacing session already closed this span as "replaced" when it joined
            reason = entry.end_reason or ("left" if said_leave else "dropped")
            with contextlib.suppress(Exception):
                await run_in_threadpool(_attend, sessions, attendance.left, meeting_id, who.site_id, reason,
                                        silent_since if reason == "dropped" else None)
            if entry.gone_since is None:  # a silent site's drop is logged already (by the ticker)
                with contextlib.suppress(Exception):
                    await control.site_left(meeting_id, who.site_id, reason)
        logger.info("ws meeting %s: site %s left", meeting_id, who.site_id)


async def _thumb(ws: WebSocket, session: SignalingSession, meeting_id: int, message: dict[str, Any]) -> None:
    """A hall-wall thumbnail (meeting.api.routes.wall); a bad one gets an ``error`` reply, the session stays."""
    try:
        wall.receive(ws.app.state, meeting_id, session.site_id, message.get("jpeg"))
    except wall.ThumbRejected as exc:
        await session.notify({"type": "error", "code": "ThumbRejected", "reason": exc.render("vi"),
                              "reason_en": exc.render("en")})


ATTENDANCE_TICK_S = 15.0


def _silent_since(sfu: Sfu | ShardedSfu, room: str, site_id: str) -> datetime | None:
    """When a site's peer last showed life, if it has been silent past the SFU's drop threshold (else None).

    A cut link keeps both the socket and aiortc's peer "connected" for a while; the span must end when the site
    really went away, so a drop and rejoin shows its gap in the attendance report.
    """
    gone = sfu.dropped_for(room, site_id)
    return None if gone is None else utcnow() - timedelta(seconds=gone)


def _attend(sessions: Any, op: Any, *args: Any) -> None:
    """One attendance write in its own short transaction (run in the worker pool, never on the event loop)."""
    with sessions() as db:
        op(db, *args)
        db.commit()


async def _attendance_ticker(sessions: Any, sfu: Sfu | ShardedSfu, room: str, meeting_id: int, site_id: str,
                             entry: _Live, control: Any) -> None:
    """While the socket is open: every second, notice a site going silent (a cut link keeps the socket and often
    the peer open) and coming back — closing its span at its last sign of life and opening a new one, so the
    report shows the gap; every ``ATTENDANCE_TICK_S`` move ``last_seen`` with the SFU's view of the link."""
    ticks = 0
    while True:
        await asyncio.sleep(LIVENESS_TICK_S)
        ticks += 1
        try:
            await _liveness(sessions, sfu, room, meeting_id, site_id, entry, control)
        except Exception:
            logger.warning("attendance: cannot follow site %s in meeting %s", site_id, meeting_id, exc_info=True)
        if entry.gone_since is not None or ticks * LIVENESS_TICK_S < ATTENDANCE_TICK_S:
            continue
        ticks = 0
        sample: dict[str, Any] = {}
        with contextlib.suppress(Exception):
            peer = next((p for p in sfu.stats(room)["peers"] if p["site"] == site_id), None)
            if peer is not None:
                sample["loss_pct"] = round(float(peer["loss"]) * 100, 2)
                if peer.get("remb_bps"):
                    sample["kbps"] = round(float(peer["remb_bps"]) / 1000, 1)
            link = sfu.link(room, site_id)
            if link is not None and link["rtt_ms"] is not None:
                sample["rtt_ms"] = round(float(link["rtt_ms"]), 1)
        try:
            await run_in_threadpool(_attend, sessions, attendance.seen, meeting_id, site_id, sample)
        except Exception:
            logger.warning("attendance: cannot record site %s in meeting %s", site_id, meeting_id, exc_info=True)


LIVENESS_TICK_S = 1.0


async def _liveness(sessions: Any, sfu: Sfu | ShardedSfu, room: str, meeting_id: int, site_id: str, entry: _Live,
                    control: Any) -> None:
    """One liveness step of :func:`_attendance_ticker` (drop → span closed at the last life; back → new span)."""
    gone = sfu.dropped_for(room, site_id)
    if entry.gone_since is None and gone is not None:
        entry.gone_since = utcnow() - timedelta(seconds=gone)
        logger.info("ws meeting %s: site %s silent for %.1f s, counted as dropped", meeting_id, site_id, gone)
        await run_in_threadpool(_attend, sessions, attendance.left, meeting_id, site_id, "dropped",
                                entry.gone_since)
        await control.site_left(meeting_id, site_id, "dropped")
    elif entry.gone_since is not None and gone is None:
        link = sfu.link(room, site_id)
        if link is None or link["state"] != "connected":
            return  # not gone any more only because its old peer vanished: wait until media flows again
        logger.info("ws meeting %s: site %s is back", meeting_id, site_id)
        entry.gone_since = None
        await run_in_threadpool(_attend, sessions, attendance.joined, meeting_id, site_id)
        await control.site_joined(meeting_id, site_id)
