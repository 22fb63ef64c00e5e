"""The SFU facade's own logic (meeting.media.shards): worker processes started, restarted and stopped; what it
answers for a site on a worker from the state that worker pushed. The media path itself is test_ws_workers.py."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

from meeting.media.shards import RemoteSession, ShardedSfu


def _alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


async def _until(check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


def test_workers_are_restarted_after_a_kill_and_all_stopped_at_the_end() -> None:
    async def run() -> tuple[list[int], int]:
        sfu = ShardedSfu(2)
        await sfu.start()
        try:
            pids = [w.pid for w in sfu.workers]
            assert all(p is not None and _alive(p) for p in pids)
            await _until(lambda: all(w.state_at > 0 for w in sfu.workers), 60)  # each pushes its state
            first = sfu.workers[0].pid
            assert first is not None
            os.kill(first, signal.SIGKILL)
            await _until(lambda: sfu.workers[0].pid not in (None, first), 30)
            assert sfu.workers[0].restarts == 1
            now = [w.pid for w in sfu.workers]
        finally:
            await sfu.stop()
        return [p for p in [*pids, *now] if p is not None], first

    pids, killed = asyncio.run(run())
    assert not [p for p in pids if _alive(p)], "a worker outlived stop()"
    assert killed in pids


def test_reads_for_a_site_on_a_worker_come_from_its_pushed_state() -> None:
    async def run() -> None:
        sfu = ShardedSfu(1)  # not started: the state is pushed by hand, as a worker's reader would store it

        async def send(_message: dict[str, Any]) -> None:
            return None

        worker = sfu.workers[0]
        session = RemoteSession(sfu, worker, 7, "5", "03160", send, hooks=None, lost=None)
        worker.sessions[7] = session
        sfu._where[("5", "03160")] = session
        link = {"state": "connected", "connected_at": 1.0, "dropped_s": 5.0, "rtt_ms": 12.0, "loss": 0.0,
                "bytes_sent": 10, "bytes_received": 0, "published": {}}
        peer = {"peer": "p1", "site": "03160", "host": False, "state": "connected"}
        worker.rooms = {"5": {"floor": None, "peers": [peer], "sites": {"03160": {"dropped_for": 5.0,
                                                                                  "link": link}}}}
        worker.state_at = time.monotonic() - 1.0
        gone = sfu.dropped_for("5", "03160")
        assert gone is not None and 5.9 < gone < 7.0  # aged by the time since the push
        got = sfu.link("5", "03160")
        assert got is not None and got["rtt_ms"] == 12.0 and got["dropped_s"] is not None
        assert sfu.stats("5")["peers"] == [{**peer, "worker": 0}]
        assert sfu.dropped_for("5", "03163") is None and sfu.link("5", "03163") is None  # not here at all
        sfu.forget_life("5", "03160")  # a new session: connecting, not the old one's drop
        assert sfu.dropped_for("5", "03160") is None
        await session.close()
        assert ("5", "03160") not in sfu._where and not worker.sessions

    asyncio.run(run())
