"""The agent's life: heartbeat, find the next meeting, join at its start, stay joined, rejoin after any break.

Nobody is at a commune's room PC to press anything, so every failure short of a rejected token is retried:
an unreachable server, a dropped link, a restarted server (the meeting lives in its database, so the agent
simply joins the same meeting again) all lead to a new join token, a new WebSocket and a new peer connection,
after a jittered, capped backoff. A revoked token or an unknown site ends the agent with exit code 3.

Live control: the host can mute the room (``mute``), run a rehearsal (``rehearsal``: publish for N s, report
what arrived), remove it (close 4412) or end the meeting (4413) — after those two the agent does not rejoin that
occurrence and waits for the next meeting. ``join_now`` in the schedule (the console pressed start or rehearsal)
makes it join at once. The operator raises the room's hand with ``python -m meeting.agent.control hand``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from meeting.agent.api import MeetingGone, ServerApi, Slot, Unreachable
from meeting.agent.config import AgentConfig, AgentConfigError, TokenRejected
from meeting.agent.control import ControlServer, socket_path
from meeting.agent.media import MediaSession
from meeting.agent.thumbs import ThumbSender

logger = logging.getLogger(__name__)

EventHook = Callable[[str, dict[str, Any]], None]

PREFETCH_MIN_S = 5.0
PREFETCH_MAX_S = 15.0
HOST_LEAD_S = 10.0
STALL_CHECK_S = 1.0
"""How often a publishing room checks that its video still leaves (MediaSession.video_stalled)."""
GIVE_UP_CODES = {4403, 4404, 4410}
"""Close codes after which this meeting is not retried (not invited, no such meeting, cancelled)."""
OVER_CODES = {4412: "removed", 4413: "ended"}
"""Close codes after which this occurrence is over for this room (removed by the host, meeting stopped)."""


class Backoff:
    """Exponential delays from ``base`` up to ``cap``, each jittered into [d/2, d] so agents do not stampede."""

    def __init__(self, base: float, cap: float, rng: random.Random | None = None) -> None:
        self.base = base
        self.cap = cap
        self.attempt = 0
        self._rng = rng or random.Random()

    def next(self) -> float:
        d = min(self.cap, self.base * 2.0**self.attempt)
        self.attempt += 1
        return d / 2 + self._rng.random() * d / 2

    def reset(self) -> None:
        self.attempt = 0


class _Dropped(Exception):
    """The session ended in a way worth retrying (link, server, ICE)."""


class _Gone(Exception):
    """This meeting is not ours any more (cancelled, uninvited): back to the schedule."""


class _Over(Exception):
    """The host removed this room or ended the meeting: never rejoin this occurrence."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class Agent:
    """One room PC's agent. ``run()`` returns 0 after ``--once``'s meeting or raises a fatal ``AgentError``."""

    def __init__(self, cfg: AgentConfig, *, on_event: EventHook | None = None) -> None:
        self.cfg = cfg
        self.api = ServerApi(cfg)
        self.status = "idle"
        self.meeting_id: int | None = None
        self.media: MediaSession | None = None
        self.sessions = 0
        self._on_event = on_event
        self._backoff = Backoff(cfg.backoff_base_s, cfg.backoff_cap_s)
        self._stopping = False
        self._token: tuple[int, str] | None = None
        self._over: set[tuple[int, int, datetime]] = set()  # occurrences the host removed us from or ended
        self._ws: ClientConnection | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.control = ControlServer(socket_path(cfg.run_dir, cfg.site), self._control)
        self.thumbs = ThumbSender()  # hall-wall thumbnails, paced by the server's ``thumbs`` messages

    # -- events (plain log lines; tests and the benchmark also take them as data) ------------------------------
    def _event(self, name: str, *, quiet: bool = False, **data: Any) -> None:
        text = " ".join(f"{k}={v}" for k, v in data.items())
        logger.log(logging.DEBUG if quiet else logging.INFO, "site %s: %s %s", self.cfg.site, name, text)
        if self._on_event is not None:
            self._on_event(name, {"site": self.cfg.site, **data})

    # -- lifecycle ---------------------------------------------------------------------------------------------
    async def run(self) -> int:
        tasks: list[asyncio.Task[None]] = []
        try:
            owner = await self._first_heartbeat()
            if owner != self.cfg.site:
                raise AgentConfigError("Mã điểm cầu thuộc điểm cầu {owner}, cấu hình ghi {site}: sửa 'site' hoặc "
                                       "tệp mã", field="site", owner=owner, site=self.cfg.site)
            await self.control.start()
            self._event("started", server=self.cfg.server, source=self.cfg.source, sink=self.cfg.sink)
            tasks = [asyncio.create_task(self._heartbeats(), name="agent-heartbeat"),
                     asyncio.create_task(self._meetings(), name="agent-meetings")]
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # re-raise a fatal error
            return 0
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.stop()

    async def stop(self) -> None:
        self._stopping = True
        await self.control.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.media is not None:
            await self.media.close()
            self.media = None
        await self.api.close()

    async def _first_heartbeat(self) -> str:
        while True:
            try:
                return await self.api.heartbeat("idle", None, {})
            except Unreachable as exc:
                delay = self._backoff.next()
                logger.warning("site %s: %s; retrying in %.1f s", self.cfg.site, exc, delay)
                await asyncio.sleep(delay)

    async def _heartbeats(self) -> None:
        # Room PCs that started together (power back after an outage) must not all beat in the same second.
        await asyncio.sleep(self.cfg.heartbeat_s * (0.5 + random.random() / 2))
        while True:
            await self._beat()
            await asyncio.sleep(self.cfg.heartbeat_s * (0.9 + random.random() / 5))

    async def _beat(self) -> None:
        detail: dict[str, Any] = {"sessions": self.sessions}
        if self.media is not None:
            r = self.media.reception
            detail.update(video_frames=r.frames["video"], audio_frames=r.frames["audio"],
                          ice=self.media.pc.connectionState)
            self._event("reception", quiet=True, meeting=self.meeting_id, video_frames=r.frames["video"],
                        audio_frames=r.frames["audio"], muted=not self.media.unmuted.is_set())
        try:
            await self.api.heartbeat(self.status, self.meeting_id, detail)
        except Unreachable as exc:
            logger.warning("site %s: heartbeat failed: %s", self.cfg.site, exc)

    # -- schedule ----------------------------------------------------------------------------------------------
    async def _meetings(self) -> None:
        while True:
            slot = await self._next_slot()
            if slot is None:
                await asyncio.sleep(self.cfg.poll_s)
                continue
            wait = 0.0 if slot.join_now else (self._opens(slot) - datetime.now(UTC)).total_seconds()
            if wait > self.cfg.poll_s:
                logger.info("site %s: next meeting %s at %s (in %.0f s)", self.cfg.site, slot.meeting_id,
                            slot.start.isoformat(), wait)
                await asyncio.sleep(self.cfg.poll_s)
                continue  # look again: the meeting may have moved or been cancelled
            if wait > 0:
                await self._prefetch(slot, wait)
            await self._attend(slot)
            if self.cfg.once:
                return

    async def _prefetch(self, slot: Slot, wait: float) -> None:
        """Fetch the join token a little before the start (jittered), then sleep until the start itself.

        At a meeting's start every commune joins in the same second; a join token costs the server a database
        write, the WebSocket join only reads. Taking the token 5–15 s early (it lives 5 min) spreads those writes.
        """
        early = min(wait, PREFETCH_MIN_S + random.random() * (PREFETCH_MAX_S - PREFETCH_MIN_S))
        await asyncio.sleep(wait - early)
        try:
            self._token = (slot.meeting_id, await self.api.join_token(slot.meeting_id))
        except (Unreachable, MeetingGone) as exc:
            logger.info("site %s: no early join token (%s); will ask at the start", self.cfg.site, exc)
        await asyncio.sleep(max(0.0, (self._opens(slot) - datetime.now(UTC)).total_seconds()))

    @staticmethod
    def _opens(slot: Slot) -> datetime:
        """When to join: the start time; the host hall a little earlier, so the communes joining at the start
        find its picture already flowing instead of waiting for it behind their own 129 joins."""
        return slot.start - timedelta(seconds=HOST_LEAD_S) if slot.host else slot.start

    async def _next_slot(self) -> Slot | None:
        try:
            slots = await self.api.schedule()
        except Unreachable as exc:
            logger.warning("site %s: cannot read the schedule: %s", self.cfg.site, exc)
            await asyncio.sleep(self._backoff.next())
            return None
        self._backoff.reset()
        now = datetime.now(UTC)
        running = [s for s in slots if s.end > now and self._key(s) not in self._over]
        return running[0] if running else None

    @staticmethod
    def _key(slot: Slot) -> tuple[int, int, datetime]:
        return slot.meeting_id, slot.occurrence_id, slot.start

    # -- one meeting -------------------------------------------------------------------------------------------
    async def _attend(self, slot: Slot) -> None:
        """Stay in ``slot`` until it ends: every break leads to a rejoin after a backoff."""
        self._event("meeting", meeting=slot.meeting_id, title=json.dumps(slot.title, ensure_ascii=False))
        self.meeting_id = slot.meeting_id
        self._backoff.reset()
        try:
            while datetime.now(UTC) < slot.end:
                try:
                    await self._session(slot)
                    break  # ended normally
                except (_Dropped, Unreachable) as exc:
                    delay = self._backoff.next()
                    self._event("dropped", meeting=slot.meeting_id, reason=json.dumps(str(exc)),
                                retry_in_s=round(delay, 2))
                    await asyncio.sleep(delay)
                except (_Gone, MeetingGone) as exc:
                    self._event("gone", meeting=slot.meeting_id, reason=json.dumps(str(exc)))
                    return
                except _Over as over:
                    # the host's decision: plain log line, no rejoin of this occurrence, later meetings as usual
                    self._over.add(self._key(slot))
                    self._event(over.why, meeting=slot.meeting_id)
                    return
        finally:
            self.status, self.meeting_id = "idle", None
            self._event("left", meeting=slot.meeting_id)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._beat(), 2)  # tell readiness at once (best effort, also on stop)

    def _ws_url(self, meeting_id: int) -> str:
        base = self.cfg.server
        scheme = "wss" if base.startswith("https:") else "ws"
        return f"{scheme}:{base.split(':', 1)[1]}/ws/meetings/{meeting_id}"

    async def _session(self, slot: Slot) -> None:
        t0 = time.monotonic()
        early, self._token = self._token, None
        token = early[1] if early is not None and early[0] == slot.meeting_id else None
        if token is None:
            token = await self.api.join_token(slot.meeting_id)
        try:
            async with connect(self._ws_url(slot.meeting_id), open_timeout=10, ping_interval=self.cfg.ping_s,
                               ping_timeout=self.cfg.ping_s * 1.5, close_timeout=1, proxy=None,
                               max_size=2**22) as ws:
                await ws.send(json.dumps({"type": "auth", "token": token}))
                self._ws = ws
                try:
                    await self._converse(ws, slot, t0)
                finally:
                    self._ws = None
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else None
            reason = exc.rcvd.reason if exc.rcvd is not None else "connection lost"
            if reason == "site_token_revoked":
                raise TokenRejected(self.cfg.site) from None
            if code in OVER_CODES:
                raise _Over(OVER_CODES[code]) from None
            if code in GIVE_UP_CODES:
                raise _Gone(f"{code} {reason}") from None
            raise _Dropped(f"websocket closed {code} {reason}") from None
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            raise _Dropped(f"websocket: {type(exc).__name__}") from None
        finally:
            if self.media is not None:
                got = self.media.reception
                self._event("session-end", meeting=slot.meeting_id, video_frames=got.frames["video"],
                            audio_frames=got.frames["audio"], keyframes=got.keyframes)
                await self.media.close()
                self.media = None

    async def _converse(self, ws: ClientConnection, slot: Slot, t0: float) -> None:
        welcome = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if welcome.get("type") == "error":
            await ws.wait_closed()  # the close frame carries the code; ConnectionClosed follows
            if ws.close_code in OVER_CODES:  # removed earlier / meeting stopped: refused again, do not retry
                raise _Over(OVER_CODES[ws.close_code])
            raise _Dropped(str(welcome.get("reason_en")))
        self.media = media = MediaSession(self.cfg.source, self.cfg.sink, host=bool(welcome.get("host")))
        await ws.send(json.dumps({"type": "offer", "sdp": await media.offer()}))
        self.sessions += 1
        self.status = "in_meeting"
        connected = receiving = False
        next_check = time.monotonic() + STALL_CHECK_S
        while True:
            left = (slot.end - datetime.now(UTC)).total_seconds()
            if left <= 0:
                with contextlib.suppress(ConnectionClosed):
                    await ws.send(json.dumps({"type": "leave"}))
                return
            try:
                raw = await asyncio.wait_for(ws.recv(), min(left, 0.1))
            except TimeoutError:
                raw = None
            if raw is not None:
                await self._on_message(json.loads(raw), media, ws)
            await self.thumbs.tick(ws, media)
            state = media.pc.connectionState
            if state == "failed":
                raise _Dropped("ICE failed")
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + STALL_CHECK_S
                if await media.video_stalled(time.monotonic()):
                    raise _Dropped("video uplink stalled")
            if state == "connected" and not connected:
                connected = True
                self._backoff.reset()
                self._event("connected", meeting=slot.meeting_id, after_s=round(time.monotonic() - t0, 3),
                            host=media.live.is_set())
            got = media.reception
            if connected and not receiving and got.first_video_at is not None and got.frames["audio"] > 0:
                receiving = True
                self._event("receiving", meeting=slot.meeting_id, after_s=round(got.first_video_at - t0, 3))

    async def _on_message(self, msg: dict[str, Any], media: MediaSession, ws: ClientConnection) -> None:
        kind = msg.get("type")
        if kind == "answer":
            await media.answer(str(msg["sdp"]))
        elif kind == "floor":
            media.set_floor(bool(msg.get("granted")))
            self._event("floor", granted=bool(msg.get("granted")))
        elif kind == "thumbs":
            self.thumbs.interval_s = float(msg.get("interval_s") or 0)
        elif kind == "video":
            self._event("video", mode=msg.get("mode"), reason=json.dumps(str(msg.get("reason"))))
        elif kind == "mute":
            media.set_muted(bool(msg.get("muted")))
            self._event("mute", muted=bool(msg.get("muted")))
        elif kind == "hand":
            self._event("hand", raised=bool(msg.get("raised")))
        elif kind == "rehearsal":
            seconds = min(60.0, max(1.0, float(msg.get("seconds") or 5)))
            self._spawn(self._rehearse(media, ws, seconds))
        elif kind == "error" and msg.get("code") in OVER_CODES.values():
            logger.info("site %s: %s by the host: %s", self.cfg.site, msg.get("code"), msg.get("reason_en"))
        elif kind == "error":
            logger.warning("site %s: server says %s: %s", self.cfg.site, msg.get("code"), msg.get("reason_en"))

    async def _rehearse(self, media: MediaSession, ws: ClientConnection, seconds: float) -> None:
        """Chạy thử: publish for ``seconds``, then tell the server what arrived from the hall meanwhile."""
        self._event("rehearsal", seconds=seconds)
        video, audio = await media.rehearse(seconds)
        self._event("rehearsal-report", video_frames=video, audio_packets=audio)
        with contextlib.suppress(ConnectionClosed):
            await ws.send(json.dumps({"type": "rehearsal-report", "video_frames": video, "audio_packets": audio}))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _control(self, request: dict[str, Any]) -> dict[str, Any]:
        """A local command (meeting.agent.control): only ``hand`` for now."""
        if request.get("cmd") != "hand":
            return {"ok": False, "error": f"unknown command {request.get('cmd')!r} (hand)"}
        ws = self._ws
        if ws is None or self.meeting_id is None:
            return {"ok": False, "error": "not in a meeting"}
        raised = bool(request.get("raised", True))
        try:
            await ws.send(json.dumps({"type": "hand", "raised": raised}))
        except ConnectionClosed:
            return {"ok": False, "error": "the meeting connection is down, try again"}
        self._event("hand-request", raised=raised)
        return {"ok": True, "meeting": self.meeting_id, "raised": raised}
