"""Offer/answer signaling for one site, independent of the transport, so the web service can mount it on a WebSocket.

The caller authenticates first (page session or per-meeting join token: that is the meeting service's job) and
builds a :class:`SignalingSession` with the identity it established; then it feeds every JSON message the peer
sends to :meth:`SignalingSession.handle` and writes every message the session emits with the ``send`` callable.
All message shapes are defined here, in :data:`CLIENT_MESSAGES` / :data:`SERVER_MESSAGES`, and documented in
``docs/media.md``. aiortc gathers candidates before it answers, so answers carry them inline; trickled
``candidate`` messages from browsers are accepted and added to the connection.

Live control (:mod:`meeting.services.live`) plugs in through :class:`SessionHooks`: the host's ``floor`` requests,
a site's ``hand`` / ``rehearsal-report`` messages and "this site's peer is in the room" go to the hooks,
which log them as meeting events and push what the meeting's state says (mute, floor) into the SFU.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from aiortc.sdp import candidate_from_sdp

from meeting.errors import MeetingError
from meeting.media.sfu import Sfu

logger = logging.getLogger(__name__)

PROTOCOL = 1

CLIENT_MESSAGES: dict[str, tuple[str, ...]] = {
    "offer": ("sdp",),
    "candidate": ("candidate",),  # optional: sdpMid, sdpMLineIndex; candidate "" = end of candidates
    "keyframe": (),
    "floor": ("action",),  # action grant (needs "site") | revoke; host only
    "stats": (),
    "leave": (),
    "ping": (),
    "hand": ("raised",),  # raise/lower this site's hand
    "rehearsal-report": ("video_frames", "audio_packets"),  # what the site received during a rehearsal test
    "thumb": ("jpeg",),  # a hall-wall thumbnail (base64 JPEG); the socket hands it to meeting.api.routes.wall
}
"""Message type -> required fields, for what a site may send."""

SERVER_MESSAGES: dict[str, tuple[str, ...]] = {
    "welcome": ("protocol", "room", "site", "host"),
    "answer": ("sdp", "peer"),
    "floor": ("granted", "holder"),
    "video": ("mode", "reason"),
    "stats": ("stats",),
    "error": ("code", "reason"),
    "bye": (),
    "pong": (),
    "mute": ("muted",),  # stop/resume sending audio (the SFU drops a muted site's audio anyway)
    "hand": ("raised",),  # acknowledgement, or lowered by the host
    "rehearsal": ("seconds",),  # publish camera + microphone for N s, then send rehearsal-report
    "thumbs": ("interval_s",),  # send a hall-wall thumbnail every interval_s seconds (0 = stop)
}
"""Message type -> fields always present, for what the server sends."""

Send = Callable[[dict[str, Any]], Coroutine[Any, Any, None]]


HOOKED = frozenset({"hand", "rehearsal-report"})
"""Messages the session hands to its hooks as they are (ignored without hooks)."""


class SignalingError(MeetingError):
    """A message the session cannot act on; it becomes an ``error`` message, never a dropped connection."""


class SessionHooks(Protocol):
    """What the web service does around a session (meeting.services.live implements it)."""

    async def joined(self, session: SignalingSession) -> None:
        """The site's peer is in the SFU room now (re-apply mute and floor after a reconnect or restart)."""

    async def message(self, session: SignalingSession, message: dict[str, Any]) -> None:
        """A :data:`HOOKED` message from the site, fields checked."""

    async def floor(self, session: SignalingSession, site: str | None) -> None:
        """The host asked to grant the floor to ``site`` (None: back to the hall)."""


class SignalingSession:
    """One site's signaling conversation with one room of the SFU."""

    def __init__(self, sfu: Sfu, room_id: str, site_id: str, send: Send, *, is_host: bool = False,
                 hooks: SessionHooks | None = None) -> None:
        self.sfu = sfu
        self.hooks = hooks
        self.room_id = room_id
        self.site_id = site_id
        self.is_host = is_host
        self._send = send
        self.peer_id: str | None = None
        self.closed = False

    async def open(self) -> None:
        await self._send(
            {"type": "welcome", "protocol": PROTOCOL, "room": self.room_id, "site": self.site_id, "host": self.is_host}
        )

    async def notify(self, message: dict[str, Any]) -> None:
        """Send a server message to the site (live control: mute, hand, rehearsal, thumbs)."""
        await self._send(message)

    async def handle(self, message: Any) -> None:
        """Act on one message from the site; bad messages get an ``error`` reply naming what is wrong."""
        try:
            await self._dispatch(message)
        except MeetingError as exc:
            logger.warning("room %s site %s: %s", self.room_id, self.site_id, exc)
            reason = {"reason": exc.render("vi"), "reason_en": exc.render("en")}
            await self._send({"type": "error", "code": type(exc).__name__, **reason})

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.peer_id is not None:
            await self.sfu.leave(self.room_id, self.peer_id)
            self.peer_id = None

    async def _dispatch(self, message: Any) -> None:
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            raise SignalingError("Thông điệp phải là một đối tượng JSON có trường 'type'", field="type")
        kind = message["type"]
        required = CLIENT_MESSAGES.get(kind)
        if required is None:
            raise SignalingError("Loại thông điệp không hỗ trợ: {kind}", field="type", kind=kind)
        for name in required:
            if name not in message:
                raise SignalingError("Thiếu trường '{name}' trong thông điệp {kind}", field=name, name=name, kind=kind)
        if self.closed:
            raise SignalingError("Phiên báo hiệu đã đóng")
        if kind == "offer":
            await self._offer(str(message["sdp"]))
        elif kind == "candidate":
            await self._candidate(message)
        elif kind == "keyframe":
            if self.peer_id is not None:
                peer = self.sfu.room(self.room_id).peers.get(self.peer_id)
                if peer is not None:
                    self.sfu.keyframe_wanted(peer, "video")
        elif kind == "floor":
            await self._floor(message)
        elif kind in HOOKED:
            if self.hooks is not None:
                await self.hooks.message(self, message)
        elif kind == "stats":
            await self._send({"type": "stats", "stats": self.sfu.stats(self.room_id)})
        elif kind == "leave":
            await self.close()
            await self._send({"type": "bye"})
        elif kind == "ping":
            await self._send({"type": "pong"})

    async def _offer(self, sdp: str) -> None:
        if self.peer_id is not None:
            # A new offer replaces the connection (e.g. after an ICE failure): simplest correct renegotiation.
            await self.sfu.leave(self.room_id, self.peer_id)
        self.peer_id, answer = await self.sfu.join(
            self.room_id, self.site_id, sdp, is_host=self.is_host, notify=self._send
        )
        await self._send({"type": "answer", "sdp": answer, "peer": self.peer_id})
        if self.hooks is not None:
            await self.hooks.joined(self)

    async def _candidate(self, message: dict[str, Any]) -> None:
        if self.peer_id is None:
            raise SignalingError("Gửi 'offer' trước khi gửi 'candidate'", field="candidate")
        text = str(message["candidate"])
        if not text:
            return
        if text.startswith("candidate:"):
            text = text[len("candidate:") :]
        try:
            candidate = candidate_from_sdp(text)
        except (ValueError, IndexError) as exc:
            raise SignalingError("Ứng viên ICE không hợp lệ: {error}", field="candidate", error=str(exc)) from exc
        candidate.sdpMid = message.get("sdpMid")
        candidate.sdpMLineIndex = message.get("sdpMLineIndex")
        peer = self.sfu.room(self.room_id).peers.get(self.peer_id)
        if peer is not None:
            await peer.pc.addIceCandidate(candidate)

    async def _floor(self, message: dict[str, Any]) -> None:
        if not self.is_host:
            raise SignalingError("Chỉ điểm cầu chủ trì mới được trao hoặc thu hồi quyền phát biểu", field="action")
        action = message["action"]
        if action == "grant":
            site = message.get("site")
            if not isinstance(site, str) or not site:
                raise SignalingError("Thiếu trường 'site' khi trao quyền phát biểu", field="site")
            if self.hooks is not None:
                await self.hooks.floor(self, site)
            else:
                self.sfu.grant_floor(self.room_id, site)
        elif action == "revoke":
            if self.hooks is not None:
                await self.hooks.floor(self, None)
            else:
                self.sfu.revoke_floor(self.room_id)
        else:
            raise SignalingError("Hành động không hợp lệ: {action} (grant|revoke)", field="action", action=str(action))
