"""An SFU worker process: one more core for subscribers, fed by the primary SFU over a relay connection.

Python runs one SFU event loop on one core; a host with more cores runs the primary SFU (publishers, floor) in
the server process and one worker per extra core. The primary offers a relay (:meth:`Sfu.relay_offer`), the
worker joins it as its room's host, and sites are spread over the workers. The parent talks to a worker with
JSON lines on stdin/stdout:

* in ``{"cmd": "upstream", "room": R, "sdp": OFFER}`` → out ``{"event": "upstream", "room": R, "sdp": ANSWER}``
* in ``{"peer": I, "room": R, "site": S, "msg": {...}}`` (a site's signaling message, see ``signaling.py``) →
  out ``{"peer": I, "msg": {...}}`` for every message the worker sends that site
* in ``{"cmd": "stats"}`` → out ``{"event": "stats", "cpu_s": PROCESS_CPU_SECONDS, "rooms": {...}}``
* in ``{"cmd": "quit"}`` (or end of input) → the worker closes every connection and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from typing import Any

from meeting.media.sfu import Sfu
from meeting.media.signaling import SignalingSession

logger = logging.getLogger(__name__)


def _out(doc: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()


async def serve() -> None:
    sfu = Sfu()
    await sfu.start()
    sessions: dict[int, SignalingSession] = {}
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**22)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def sender(index: int) -> Any:
        async def send(message: dict[str, Any]) -> None:
            _out({"peer": index, "msg": message})

        return send

    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            doc = json.loads(line)
            cmd = doc.get("cmd")
            if cmd == "quit":
                break
            if cmd == "upstream":
                _, answer = await sfu.join(doc["room"], "upstream", doc["sdp"], is_host=True)
                _out({"event": "upstream", "room": doc["room"], "sdp": answer})
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
    finally:
        for session in sessions.values():
            await session.close()
        await sfu.stop()


def main() -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(serve())


if __name__ == "__main__":
    main()
