"""Offer/answer signaling for one site, independent of the transport, so the web service can mount it on a WebSocket.

The caller authenticates first (page session or per-meeting join token: that is the meeting service's job) and
builds a :class:`SignalingSession` with the identity it established; then it feeds every JSON message the peer
sends to :meth:`SignalingSession.handle` and writes every message the session emits with the ``send`` callable.
All message shapes are defined here, in :data:`CLIENT_MESSAGES` / :data:`SERVER_MESSAGES`, and documented in
``docs/media.md``. aiortc gathers candidates before it answers, so answers carry them inline; trickled
``candidate`` messages from browsers are accepted and added to the connection.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

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
}
"""Message type -> fields always present, for what the server sends."""

Send = Callable[[dict[str, Any]], Coroutine[Any, Any, None]]


class SignalingError(MeetingError):
    """A message the session cannot act on; it becomes an ``error`` message, never a dropped connection."""


class SignalingSession:
    """One site's signaling conversation with one room of the SFU."""

    def __init__(self, sfu: Sfu, room_id: str, site_id: str, send: Send, *, is_host: bool = False) -> None:
        self.sfu = sfu
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
            self._floor(message)
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

    def _floor(self, message: dict[str, Any]) -> None:
        if not self.is_host:
            raise SignalingError("Chỉ điểm cầu chủ trì mới được trao hoặc thu hồi quyền phát biểu", field="action")
        action = message["action"]
        if action == "grant":
            site = message.get("site")
            if not isinstance(site, str) or not site:
                raise SignalingError("Thiếu trường 'site' khi trao quyền phát biểu", field="site")
            self.sfu.grant_floor(self.room_id, site)
        elif action == "revoke":
            self.sfu.revoke_floor(self.room_id)
        else:
            raise SignalingError("Hành động không hợp lệ: {action} (grant|revoke)", field="action", action=str(action))
