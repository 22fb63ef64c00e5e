"""An SFU worker process: one more core for subscribers, fed by the primary SFU over a relay connection.

Python runs one SFU event loop on one core; a host with more cores runs the primary SFU (publishers, floor) in
the server process and one worker per extra core (:mod:`meeting.media.shards` starts them and routes sites to
them). The primary offers a relay (:meth:`Sfu.relay_offer`), the worker joins it as its room's host, and sites
are spread over the workers. The parent talks to a worker with JSON lines on stdin/stdout:

* in ``{"cmd": "upstream", "room": R, "sdp": OFFER}`` → out ``{"event": "upstream", "room": R, "sdp": ANSWER}``
  (a second upstream for the same room replaces the first);
* in ``{"cmd": "drop", "room": R}`` → the room's upstream leaves;
* in ``{"peer": I, "room": R, "site": S, "msg": {...}}`` (a site's signaling message, see ``signaling.py``) →
  out ``{"peer": I, "msg": {...}}`` for every message the worker sends that site;
* in ``{"cmd": "close", "peer": I}`` → that site's session ends (its socket closed on the server);
* in ``{"cmd": "floor", "room": R, "site": S | null}`` → grant (revoke) the floor here: the site's media then
  goes to the worker's own subscribers and up the relay;
* in ``{"cmd": "mute", "room": R, "site": S, "muted": B}``, ``{"cmd": "forget", "room": R, "site": S}`` → the
  :class:`Sfu` methods of the same name;
* in ``{"cmd": "stats"}`` → out ``{"event": "stats", "cpu_s": PROCESS_CPU_SECONDS, "rooms": {...}}``;
* every ``STATE_EVERY_S`` out ``{"event": "state", "rooms": {R: {"peers": [...], "sites": {S: {"dropped_for":
  …, "link": {...}}}}}}``: what the server answers its synchronous reads (console, attendance) from;
* in ``{"cmd": "quit"}`` (or end of input: the server died) → the worker closes every connection and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import time
from typing import Any

from meeting.media.sfu import MediaError, Sfu
from meeting.media.signaling import SignalingSession

logger = logging.getLogger(__name__)

STATE_EVERY_S = 0.5
UPSTREAM = "upstream"


def _out(doc: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()


def state(sfu: Sfu) -> dict[str, Any]:
    """Per room: the stats of every site's peer and each site's drop/link view (the relay itself left out)."""
    rooms: dict[str, Any] = {}
    for room_id, room in sfu.rooms.items():
        peers = [p for p in sfu.stats(room_id)["peers"] if p["site"] != UPSTREAM]
        names = {p.site_id for p in room.peers.values() if p.site_id != UPSTREAM} | set(room.alive) - {UPSTREAM}
        sites = {s: {"dropped_for": sfu.dropped_for(room_id, s), "link": sfu.link(room_id, s)} for s in names}
        rooms[room_id] = {"floor": room.floor, "peers": peers, "sites": sites}
    return rooms


async def serve() -> None:
    sfu = Sfu()
    await sfu.start()
    sessions: dict[int, SignalingSession] = {}
    upstreams: dict[str, str] = {}
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**22)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def sender(index: int) -> Any:
        async def send(message: dict[str, Any]) -> None:
            _out({"peer": index, "msg": message})

        return send

    async def push() -> None:
        while True:
            await asyncio.sleep(STATE_EVERY_S)
            try:
                _out({"event": "state", "at": time.monotonic(), "rooms": state(sfu)})
            except Exception:  # one bad snapshot must not stop the next
                logger.exception("worker state snapshot failed")

    pusher = asyncio.create_task(push())
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            doc = json.loads(line)
            cmd = doc.get("cmd")
            try:
                if cmd == "quit":
                    break
                await _command(sfu, doc, cmd, sessions, upstreams, sender)
            except MediaError as exc:
                logger.warning("worker: %s: %s", cmd or "peer message", exc)
    finally:
        pusher.cancel()
        for session in sessions.values():
            await session.close()
        await sfu.stop()


async def _command(sfu: Sfu, doc: dict[str, Any], cmd: str | None, sessions: dict[int, SignalingSession],
                   upstreams: dict[str, str], sender: Any) -> None:
    if cmd == "upstream":
        room = doc["room"]
        old = upstreams.pop(room, None)
        if old is not None:
            await sfu.leave(room, old)
        upstreams[room], answer = await sfu.join(room, UPSTREAM, doc["sdp"], is_host=True)
        _out({"event": "upstream", "room": room, "sdp": answer})
    elif cmd == "drop":
        old = upstreams.pop(doc["room"], None)
        if old is not None:
            await sfu.leave(doc["room"], old)
    elif cmd == "close":
        session = sessions.pop(int(doc["peer"]), None)
        if session is not None:
            await session.close()
    elif cmd == "floor":
        room, site = doc["room"], doc.get("site")
        if room in sfu.rooms:
            if site is None:
                sfu.revoke_floor(room)
            else:
                sfu.grant_floor(room, site)
    elif cmd == "mute":
        sfu.set_muted(doc["room"], doc["site"], bool(doc["muted"]))
    elif cmd == "forget":
        sfu.forget_life(doc["room"], doc["site"])
    elif cmd == "stats":
        rooms = {room_id: sfu.stats(room_id) for room_id in sfu.rooms}
        _out({"event": "stats", "cpu_s": time.process_time(), "rooms": rooms})
    elif "peer" in doc:
        index = int(doc["peer"])
        session = sessions.get(index)
        if session is None:
            session = SignalingSession(sfu, doc["room"], doc["site"], sender(index))
            sessions[index] = session
        await session.handle(doc["msg"])


def main() -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
