"""The web service's SFU over several processes: the primary in the server process, subscribers on workers.

One Python event loop does ICE, DTLS and forwarding on one core; at a meeting's start 129 room agents join in
the same second and queue behind each other there. :class:`ShardedSfu` starts ``LIENTHONG_SFU_WORKERS``
worker processes (:mod:`meeting.media.worker`) and places each room agent's peer on the least loaded one; the
host hall and browsers (a WebSocket with an ``Origin`` header) stay on the primary, which keeps the publishers,
the floor and the recorder. Each worker gets a room's speaker over one relay connection from the primary.

It is a facade with the :class:`~meeting.media.sfu.Sfu` methods the signaling socket and live control use, so
they do not care where a site is:

* synchronous reads (``dropped_for``, ``link``, ``stats``) for a site on a worker are answered from the state
  the worker pushes every 0.5 s (``dropped_for`` ages the pushed value by the time since);
* actions are forwarded: mute and forget-life to every worker; the floor to a site on a worker is granted in
  that worker (its media goes to the worker's subscribers directly) and, on the primary, to the worker's relay
  peer, whose sendrecv connection carries the site's media up (recorder, other workers, the host hall);
* a worker that dies: the sockets of its sites are closed (the agents rejoin with their backoff and land on a
  live worker), its relays are dropped and the worker is started again.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from meeting.media.sfu import MediaError, Room, Sfu
from meeting.media.signaling import Send, SessionHooks, SignalingSession

logger = logging.getLogger(__name__)

RESTART_DELAY_S = 1.0
QUIT_WAIT_S = 5.0
ANSWER_WAIT_S = 15.0
"""How long a site's offer waits for the worker's answer before the socket reads the next message."""
FORWARDED = frozenset({"offer", "candidate", "keyframe"})
"""Site messages a worker acts on; everything else (floor, hand, stats, ping…) is the server's."""

Lost = Callable[[], Awaitable[None]]


class WorkerProcess:
    """One worker process and what the server knows of it."""

    def __init__(self, index: int, owner: ShardedSfu) -> None:
        self.index = index
        self.owner = owner
        self.proc: asyncio.subprocess.Process | None = None
        self.sessions: dict[int, RemoteSession] = {}
        self.relays: set[str] = set()
        """Rooms whose speaker this worker gets over a relay connection from the primary."""
        self.upstream: dict[str, asyncio.Future[str]] = {}
        self.rooms: dict[str, Any] = {}
        self.state_at = 0.0
        self.restarts = 0
        self._reader: asyncio.Task[None] | None = None

    @property
    def relay_id(self) -> str:
        return f"w{self.index}"

    @property
    def relay_peer(self) -> str:
        return f"relay-{self.relay_id}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "meeting.media.worker", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, limit=2**24)
        self.rooms, self.state_at = {}, 0.0
        self._reader = asyncio.create_task(self._read(self.proc), name=f"sfu-worker-{self.index}")
        for room_id, sites in self.owner.primary.muted.items():  # a restarted worker knows who is muted
            for site_id in sites:
                self.send({"cmd": "mute", "room": room_id, "site": site_id, "muted": True})
        logger.info("sfu worker %d started (pid %d)", self.index, self.proc.pid)

    def send(self, doc: dict[str, Any]) -> None:
        proc = self.proc
        if proc is None or proc.stdin is None or proc.returncode is not None or proc.stdin.is_closing():
            return
        with contextlib.suppress(ConnectionError, RuntimeError):
            proc.stdin.write((json.dumps(doc) + "\n").encode())

    async def stop(self) -> None:
        proc, self.proc = self.proc, None
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if proc is None or proc.returncode is not None:
            return
        if proc.stdin is not None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                proc.stdin.write(b'{"cmd": "quit"}\n')
                proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), QUIT_WAIT_S)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        logger.info("sfu worker %d stopped", self.index)

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        try:
            while True:
                line = await proc.stdout.readline()
                if not line:
                    break
                try:
                    await self._on(json.loads(line))
                except Exception:  # one bad line or hook must not stop the worker's messages
                    logger.exception("sfu worker %d: cannot handle %r", self.index, line[:200])
        finally:
            if self.proc is proc:  # not a stop(): the process died under us
                self.owner.spawn(self.owner.worker_lost(self))

    async def _on(self, doc: dict[str, Any]) -> None:
        event = doc.get("event")
        if event == "state":
            self.rooms, self.state_at = doc.get("rooms") or {}, time.monotonic()
        elif event == "upstream":
            future = self.upstream.pop(str(doc["room"]), None)
            if future is not None and not future.done():
                future.set_result(str(doc["sdp"]))
        elif "peer" in doc:
            session = self.sessions.get(int(doc["peer"]))
            if session is not None:
                await session.deliver(doc["msg"])

    def site(self, room_id: str, site_id: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self.rooms.get(room_id, {}).get("sites", {}).get(site_id)
        return found


class RemoteSession(SignalingSession):
    """A site whose peer lives in a worker: media messages go there, the rest is handled here as usual."""

    def __init__(self, owner: ShardedSfu, worker: WorkerProcess, index: int, room_id: str, site_id: str,
                 send: Send, *, hooks: SessionHooks | None, lost: Lost | None) -> None:
        super().__init__(owner.primary, room_id, site_id, send, is_host=False, hooks=hooks)
        self.sfu = owner  # type: ignore[assignment]  # stats and floor through the facade
        self.owner = owner
        self.worker = worker
        self.index = index
        self.lost = lost
        self._answered: asyncio.Future[None] | None = None

    async def handle(self, message: Any) -> None:
        kind = message.get("type") if isinstance(message, dict) else None
        if kind not in FORWARDED or self.closed:
            await super().handle(message)
            return
        if kind == "offer":
            try:
                await self.owner.relay(self.worker, self.room_id)
            except MediaError as exc:
                await self._send({"type": "error", "code": type(exc).__name__, "reason": exc.render("vi"),
                                  "reason_en": exc.render("en")})
                return
        if kind != "offer":
            self.worker.send({"peer": self.index, "room": self.room_id, "site": self.site_id, "msg": message})
            return
        # Like the in-process session, the offer is handled when its answer is out (the caller then reads peer_id)
        self._answered = asyncio.get_running_loop().create_future()
        self.worker.send({"peer": self.index, "room": self.room_id, "site": self.site_id, "msg": message})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._answered), ANSWER_WAIT_S)

    async def deliver(self, message: dict[str, Any]) -> None:
        """A message the worker sends the site; its answer also means the peer is in the room (live control)."""
        await self._send(message)
        if message.get("type") in ("answer", "error") and self._answered is not None and not self._answered.done():
            self._answered.set_result(None)
        if message.get("type") == "answer":
            self.peer_id = str(message.get("peer"))
            if self.hooks is not None:
                try:
                    await self.hooks.joined(self)
                except Exception:  # live control's trouble must not take the room out of the meeting
                    logger.exception("room %s: live control hook failed for site %s", self.room_id, self.site_id)

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.peer_id = None
        self.worker.send({"cmd": "close", "peer": self.index})
        self.owner.release(self)


class ShardedSfu:
    """The :class:`Sfu` facade over the primary and ``workers`` worker processes (see the module docstring)."""

    def __init__(self, workers: int, primary: Sfu | None = None) -> None:
        self.primary = primary or Sfu()
        self.workers = [WorkerProcess(i, self) for i in range(workers)]
        self.config = self.primary.config
        self.state = "new"
        self._where: dict[tuple[str, str], RemoteSession] = {}
        self._floor: dict[str, tuple[str, WorkerProcess]] = {}
        self._numbers = itertools.count(1)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._locks: dict[tuple[int, str], asyncio.Lock] = {}

    # -- lifecycle ---------------------------------------------------------------------------------------------
    async def start(self) -> None:
        await self.primary.start()
        await asyncio.gather(*(w.start() for w in self.workers))
        self.state = "running"

    async def stop(self) -> None:
        """Stop every worker process (quit, then kill after 5 s) and the primary; safe to call twice."""
        self.state = "stopped"
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(w.stop() for w in self.workers), return_exceptions=True)
        await self.primary.stop()

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def worker_lost(self, worker: WorkerProcess) -> None:
        """A worker died: its sites' sockets close (their agents rejoin elsewhere), then it starts again."""
        code = worker.proc.returncode if worker.proc is not None else None
        logger.error("sfu worker %d (pid %s) died (exit %s): %d site(s) must rejoin", worker.index, worker.pid,
                     code, len(worker.sessions))
        worker.proc = None
        for future in worker.upstream.values():
            if not future.done():
                future.set_exception(MediaError("SFU worker stopped"))
        worker.upstream.clear()
        for room_id, (_, holder) in list(self._floor.items()):
            if holder is worker:
                del self._floor[room_id]
                self.primary.revoke_floor(room_id)
        for room_id in list(worker.relays):
            worker.relays.discard(room_id)
            await self.primary.leave(room_id, worker.relay_peer)
        for session in list(worker.sessions.values()):
            session.closed = True
            if session._answered is not None and not session._answered.done():
                session._answered.set_result(None)
            self.release(session)
            if session.lost is not None:
                with contextlib.suppress(Exception):
                    await session.lost()
        if self.state != "running":
            return
        await asyncio.sleep(RESTART_DELAY_S)
        if self.state == "running":
            worker.restarts += 1
            await worker.start()

    # -- placement ---------------------------------------------------------------------------------------------
    def open_session(self, room_id: str, site_id: str, send: Send, *, is_host: bool, browser: bool,
                     hooks: SessionHooks | None = None, lost: Lost | None = None) -> SignalingSession:
        """The session for a new socket: on the primary (host hall, browsers) or on the least loaded worker."""
        live = [w for w in self.workers if w.proc is not None and w.proc.returncode is None]
        if is_host or browser or not live:
            return SignalingSession(self, room_id, site_id, send, is_host=is_host, hooks=hooks)  # type: ignore[arg-type]
        # fewest sessions, not counting this site's own previous one (a reconnect replaces it)
        worker = min(live, key=lambda w: sum((s.room_id, s.site_id) != (room_id, site_id) for s in w.sessions.values()))
        session = RemoteSession(self, worker, next(self._numbers), room_id, site_id, send, hooks=hooks, lost=lost)
        worker.sessions[session.index] = session
        self._where[(room_id, site_id)] = session
        logger.info("room %s: site %s on sfu worker %d", room_id, site_id, worker.index)
        return session

    def release(self, session: RemoteSession) -> None:
        session.worker.sessions.pop(session.index, None)
        if self._where.get((session.room_id, session.site_id)) is session:
            del self._where[(session.room_id, session.site_id)]
        worker, room_id = session.worker, session.room_id
        held = self._floor.get(room_id)
        if held is not None and held == (session.site_id, worker):  # as Sfu.leave does: the floor goes back to the hall
            del self._floor[room_id]
            if room_id in self.primary.rooms:
                self.primary.revoke_floor(room_id)
        if not any(s.room_id == room_id for s in worker.sessions.values()) and room_id in worker.relays:
            worker.relays.discard(room_id)
            worker.send({"cmd": "drop", "room": room_id})
            self.spawn(self.primary.leave(room_id, worker.relay_peer))

    def _remote(self, room_id: str, site_id: str) -> RemoteSession | None:
        return self._where.get((room_id, site_id))

    async def relay(self, worker: WorkerProcess, room_id: str) -> None:
        """Make sure ``worker`` gets the room's speaker (one relay connection per room and worker)."""
        lock = self._locks.setdefault((worker.index, room_id), asyncio.Lock())
        async with lock:
            room = self.primary.open_room(room_id)
            if room_id in worker.relays and worker.relay_peer in room.peers:
                return
            peer_id, offer = await self.primary.relay_offer(room_id, worker.relay_id)
            future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            worker.upstream[room_id] = future
            worker.send({"cmd": "upstream", "room": room_id, "sdp": offer})
            answer = await asyncio.wait_for(future, 10)
            await self.primary.relay_answer(room_id, peer_id, answer)
            worker.relays.add(room_id)

    # -- the Sfu methods the signaling socket, live control and the recorder use -------------------------------------
    @property
    def rooms(self) -> dict[str, Room]:
        return self.primary.rooms

    def room(self, room_id: str) -> Room:
        return self.primary.room(room_id)

    async def join(self, *args: Any, **kwargs: Any) -> tuple[str, str]:
        return await self.primary.join(*args, **kwargs)

    async def leave(self, room_id: str, peer_id: str) -> None:
        await self.primary.leave(room_id, peer_id)

    def keyframe_wanted(self, *args: Any) -> None:
        self.primary.keyframe_wanted(*args)

    def attach_recorder(self, *args: Any) -> None:
        self.primary.attach_recorder(*args)

    def detach_recorder(self, room_id: str) -> Any:
        return self.primary.detach_recorder(room_id)

    def grant_floor(self, room_id: str, site_id: str) -> None:
        remote = self._remote(room_id, site_id)
        if remote is None:
            self.primary.grant_floor(room_id, site_id)  # raises when the site is not connected
            self._revoke_workers(room_id)
            return
        worker = remote.worker
        if remote.peer_id is None or worker.relay_peer not in self.primary.open_room(room_id).peers:
            raise MediaError("Điểm cầu {site} chưa kết nối vào phòng {room}", site=site_id, room=room_id)
        self._revoke_workers(room_id, keep=worker)
        worker.send({"cmd": "floor", "room": room_id, "site": site_id})
        self.primary.grant_floor(room_id, worker.relay_peer)
        self._floor[room_id] = (site_id, worker)
        logger.info("room %s: floor to site %s on sfu worker %d", room_id, site_id, worker.index)

    def revoke_floor(self, room_id: str) -> None:
        self._revoke_workers(room_id)
        self.primary.revoke_floor(room_id)

    def _revoke_workers(self, room_id: str, keep: WorkerProcess | None = None) -> None:
        held = self._floor.get(room_id)
        if held is not None and held[1] is not keep:
            held[1].send({"cmd": "floor", "room": room_id, "site": None})
            del self._floor[room_id]

    def set_muted(self, room_id: str, site_id: str, muted: bool) -> None:
        """Mute here and in every worker; only changes are sent (live control re-asserts mutes on every read)."""
        if muted == (site_id in self.primary.muted.get(room_id, set())):
            return
        self.primary.set_muted(room_id, site_id, muted)
        for worker in self.workers:
            worker.send({"cmd": "mute", "room": room_id, "site": site_id, "muted": muted})

    def forget_life(self, room_id: str, site_id: str) -> None:
        self.primary.forget_life(room_id, site_id)
        for worker in self.workers:
            worker.send({"cmd": "forget", "room": room_id, "site": site_id})
            known = worker.site(room_id, site_id)
            if known is not None:
                known["dropped_for"] = None

    def link(self, room_id: str, site_id: str) -> dict[str, Any] | None:
        remote = self._remote(room_id, site_id)
        if remote is None:
            return self.primary.link(room_id, site_id)
        known = remote.worker.site(room_id, site_id)
        link: dict[str, Any] | None = known.get("link") if known is not None else None
        if link is not None:
            link = {**link, "dropped_s": self.dropped_for(room_id, site_id)}
        return link

    def dropped_for(self, room_id: str, site_id: str) -> float | None:
        remote = self._remote(room_id, site_id)
        if remote is None:
            return self.primary.dropped_for(room_id, site_id)
        known = remote.worker.site(room_id, site_id)
        gone = known.get("dropped_for") if known is not None else None
        return None if gone is None else float(gone) + time.monotonic() - remote.worker.state_at

    def stats(self, room_id: str) -> dict[str, Any]:
        """The primary's room (relays left out) plus every worker's peers of it (``worker``: its index)."""
        try:
            doc = self.primary.stats(room_id)
        except MediaError:
            if not any(room_id in w.rooms for w in self.workers):
                raise
            doc = {"room": room_id, "floor": None, "peers": []}
        doc["peers"] = [p for p in doc["peers"] if not str(p["site"]).startswith("relay-")]
        held = self._floor.get(room_id)
        if held is not None:
            doc["floor"] = held[0]
        for worker in self.workers:
            doc["peers"] += [{**p, "worker": worker.index} for p in worker.rooms.get(room_id, {}).get("peers", [])]
        return doc


def open_session(sfu: Sfu | ShardedSfu, room_id: str, site_id: str, send: Send, *, is_host: bool, browser: bool,
                 hooks: SessionHooks | None = None, lost: Lost | None = None) -> SignalingSession:
    """A signaling session for ``sfu``, whichever kind the web service runs (plain: today's single process)."""
    if isinstance(sfu, ShardedSfu):
        return sfu.open_session(room_id, site_id, send, is_host=is_host, browser=browser, hooks=hooks, lost=lost)
    return SignalingSession(sfu, room_id, site_id, send, is_host=is_host, hooks=hooks)
