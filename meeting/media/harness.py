"""Runs an in-process SFU against peer processes (:mod:`meeting.media.testpeer`) for the tests and the benchmark.

Each group of peers is one subprocess speaking JSON lines; every peer in it gets its own
:class:`~meeting.media.signaling.SignalingSession`, so the whole signaling path is exercised, only the WebSocket is
replaced by the pipe. Must run inside a network namespace of ours (aioice gathers no loopback candidates and the
tests must never touch the machine's own interfaces).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from meeting.media.sfu import Sfu
from meeting.media.signaling import SignalingSession

logger = logging.getLogger(__name__)


class PeerGroup:
    """One ``testpeer`` subprocess holding ``count`` peers of one role."""

    def __init__(
        self,
        harness: Harness,
        role: str,
        count: int,
        first: int,
        site_prefix: str,
        *,
        is_host: bool = False,
        prefix_cmd: Sequence[str] = (),
        extra: Sequence[str] = (),
        worker: WorkerProcess | None = None,
    ) -> None:
        self.harness = harness
        self.worker = worker
        self.role = role
        self.count = count
        self.first = first
        self.site_prefix = site_prefix
        self.is_host = is_host
        self.prefix_cmd = list(prefix_cmd)
        self.extra = list(extra)
        self.proc: asyncio.subprocess.Process | None = None
        self.sessions: dict[int, SignalingSession] = {}
        self.events: list[dict[str, Any]] = []
        self.connected: dict[int, float] = {}
        self._reports: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
        self._pump: asyncio.Task[None] | None = None
        self._closed = asyncio.Event()

    def site_of(self, index: int) -> str:
        return self.site_prefix if self.count == 1 else f"{self.site_prefix}{index}"

    async def start(self) -> None:
        nice = ["nice", "-n", str(self.harness.generator_nice)] if self.harness.generator_nice and self.role in (
            "light", "probe") else []
        cmd = [
            *self.prefix_cmd,
            *nice,
            sys.executable,
            "-m",
            "meeting.media.testpeer",
            "--role",
            self.role,
            "--count",
            str(self.count),
            "--first",
            str(self.first),
            *self.extra,
        ]
        self.proc = await asyncio.create_subprocess_exec(
            *cmd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=2**22
        )
        for i in range(self.first, self.first + self.count):
            if self.worker is not None:
                self.worker.groups[i] = self
                continue
            session = SignalingSession(
                self.harness.sfu, self.harness.room, self.site_of(i), self._sender(i), is_host=self.is_host
            )
            self.sessions[i] = session
        self._pump = asyncio.create_task(self._run_pump())

    def _sender(self, index: int) -> Any:
        async def send(message: dict[str, Any]) -> None:
            await self.write({"peer": index, "msg": message})

        return send

    async def write(self, doc: dict[str, Any]) -> None:
        if self.proc is None or self.proc.stdin is None or self.proc.stdin.is_closing():
            return
        self.proc.stdin.write((json.dumps(doc) + "\n").encode())
        with contextlib.suppress(ConnectionError):
            await self.proc.stdin.drain()

    async def _run_pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        loop = asyncio.get_running_loop()
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                break
            doc = json.loads(line)
            if "msg" in doc and self.worker is not None:
                index, site = doc["peer"], self.site_of(doc["peer"])
                await self.worker.write({"peer": index, "room": self.harness.room, "site": site, "msg": doc["msg"]})
            elif "msg" in doc:
                session = self.sessions.get(doc["peer"])
                if session is not None:
                    await session.handle(doc["msg"])
            elif doc.get("event") == "report":
                await self._reports.put(doc["peers"])
            elif doc.get("event") == "connected":
                self.connected[doc["peer"]] = loop.time()
                self.events.append(doc)
            else:
                self.events.append(doc)
        self._closed.set()

    async def report(self, timeout: float = 20.0) -> list[dict[str, Any]]:
        await self.write({"cmd": "report"})
        return await asyncio.wait_for(self._reports.get(), timeout)

    async def close(self) -> None:
        for session in self.sessions.values():
            await session.close()
        if self.proc is not None and self.proc.returncode is None:
            await self.write({"cmd": "quit"})
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump


class WorkerProcess:
    """A ``meeting.media.worker`` subprocess fed by the harness's SFU over a relay; peer groups may sign on to it."""

    def __init__(self, harness: Harness, name: str) -> None:
        self.harness = harness
        self.name = name
        self.groups: dict[int, PeerGroup] = {}
        self.proc: asyncio.subprocess.Process | None = None
        self._replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._pump: asyncio.Task[None] | None = None
        self.state: dict[str, Any] | None = None
        """The worker's last periodic ``state`` event, if it sends them."""

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "meeting.media.worker",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=2**22,
        )
        self._pump = asyncio.create_task(self._run_pump())
        relay_peer, offer = await self.harness.sfu.relay_offer(self.harness.room, self.name)
        await self.write({"cmd": "upstream", "room": self.harness.room, "sdp": offer})
        reply = await asyncio.wait_for(self._replies.get(), 30)
        await self.harness.sfu.relay_answer(self.harness.room, relay_peer, reply["sdp"])

    async def write(self, doc: dict[str, Any]) -> None:
        if self.proc is None or self.proc.stdin is None or self.proc.stdin.is_closing():
            return
        self.proc.stdin.write((json.dumps(doc) + "\n").encode())
        with contextlib.suppress(ConnectionError):
            await self.proc.stdin.drain()

    async def _run_pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                break
            doc = json.loads(line)
            if "msg" in doc:
                group = self.groups.get(doc["peer"])
                if group is not None:
                    await group.write(doc)
            elif doc.get("event") == "state":  # the worker's periodic unsolicited state: not a reply
                self.state = doc
            else:
                await self._replies.put(doc)

    async def stats(self) -> dict[str, Any]:
        """``{"cpu_s": process CPU seconds, "rooms": {room: Sfu.stats(room)}}`` of the worker."""
        await self.write({"cmd": "stats"})
        reply: dict[str, Any] = await asyncio.wait_for(self._replies.get(), 20)
        return reply

    async def close(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            await self.write({"cmd": "quit"})
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump


class Harness:
    """An SFU in this process, a room, and peer groups in subprocesses (optionally behind worker SFU processes)."""

    def __init__(self, sfu: Sfu, room: str = "test-room", *, generator_nice: int = 0) -> None:
        self.sfu = sfu
        self.room = room
        self.generator_nice = generator_nice
        """Run subscriber processes at this niceness (benchmarks: the SFU under test gets the CPU it needs first)."""
        self.groups: list[PeerGroup] = []
        self.workers: list[WorkerProcess] = []
        self._next = 0

    async def add_worker(self) -> WorkerProcess:
        worker = WorkerProcess(self, f"w{len(self.workers) + 1}")
        self.workers.append(worker)
        await worker.start()
        return worker

    async def add(
        self,
        role: str,
        count: int = 1,
        *,
        site: str | None = None,
        is_host: bool = False,
        prefix_cmd: Sequence[str] = (),
        extra: Sequence[str] = (),
        worker: WorkerProcess | None = None,
    ) -> PeerGroup:
        group = PeerGroup(
            self, role, count, self._next, site or f"{role}-", is_host=is_host, prefix_cmd=prefix_cmd, extra=extra,
            worker=worker,
        )
        self._next += count
        self.groups.append(group)
        await group.start()
        return group

    async def wait_connected(self, group: PeerGroup, timeout: float = 30.0) -> None:
        """Wait until every peer of ``group`` reports ICE + DTLS connected."""
        deadline = asyncio.get_running_loop().time() + timeout
        while len(group.connected) < group.count:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{len(group.connected)}/{group.count} {group.role} peers connected")
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        for group in self.groups:
            await group.close()
        self.groups.clear()
        for worker in self.workers:
            await worker.close()
        self.workers.clear()
