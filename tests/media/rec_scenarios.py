"""Recording scenario, run INSIDE the test namespace: an SFU in this process records real aiortc publishers.

``python -m tests.media.rec_scenarios OUT_DIR SECONDS [DB_URL MEETING_ID]`` prints one JSON line. The host hall
(dark pictures) holds the floor for the first half, a commune (bright pictures) for the second, so the file must
show both; aiortc's codec factories are counted in this process (the recorder must open none), and the muxer's
streams must have no codec context.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from meeting.media import recorder
from meeting.media.harness import Harness
from meeting.media.sfu import Sfu, SfuConfig
from tests.media.scenarios import _codec_doc, _count_codecs


async def record(harness: Harness, out_dir: Path, seconds: float, db_url: str | None, meeting_id: int | None
                 ) -> dict[str, Any]:
    sfu = harness.sfu
    host = await harness.add("publisher", site="host", is_host=True, extra=["--luma", "40"])
    site = await harness.add("site", site="xa-rec", extra=["--luma", "210"])
    for g in (host, site):
        await harness.wait_connected(g)
    stored: list[dict[str, Any]] = []
    if db_url is not None and meeting_id is not None:
        from meeting.db import make_engine, make_sessionmaker
        from meeting.settings import Settings

        settings = Settings.load(db_url, recordings_dir=str(out_dir))
        engine = make_engine(db_url)
        rec = recorder.record_meeting(sfu, harness.room, meeting_id, make_sessionmaker(engine), settings)
    else:
        engine = None
        rec = recorder.start(sfu, harness.room, out_dir / "floor.webm", on_close=lambda r: stored.append(r.as_dict()))
    room = sfu.room(harness.room)
    host_peer, site_peer = room.by_site("host"), room.by_site("xa-rec")
    assert host_peer is not None and site_peer is not None

    def published() -> dict[str, int]:
        return {f"{who}_{k}": p.sources[k].frames for who, p in (("host", host_peer), ("site", site_peer))
                for k in ("video", "audio")}

    t0 = time.monotonic()
    at_start = published()
    await asyncio.sleep(seconds / 2)
    at_grant = published()
    sfu.grant_floor(harness.room, "xa-rec")
    grant_at = time.monotonic() - t0
    await asyncio.sleep(seconds - grant_at)
    at_stop = published()
    streams_without_context = [
        t.stream is not None and t.stream.codec_context is None for t in rec._tracks.values()
    ]
    result = recorder.stop(sfu, harness.room)
    assert result is not None
    again = recorder.stop(sfu, harness.room)  # stopping twice is harmless
    if engine is not None:
        engine.dispose()
    return {
        "result": result.as_dict(),
        "stopped_twice": again is None,
        "on_close": stored,
        "grant_at_s": grant_at,
        # what the floor-holder published while it held the floor (the SFU's own counters)
        "offered": {k: at_grant[f"host_{k}"] - at_start[f"host_{k}"] + at_stop[f"site_{k}"] - at_grant[f"site_{k}"]
                    for k in ("video", "audio")},
        "wall_s": time.monotonic() - t0,
        "streams_without_codec_context": streams_without_context,
        "codecs": _codec_doc(sfu),
    }


async def _run(out_dir: Path, seconds: float, db_url: str | None, meeting_id: int | None) -> dict[str, Any]:
    _count_codecs()
    sfu = Sfu(SfuConfig())
    await sfu.start()
    harness = Harness(sfu, room="rec-room")
    try:
        return await record(harness, out_dir, seconds, db_url, meeting_id)
    finally:
        await harness.close()
        await sfu.stop()


def main() -> None:
    out_dir, seconds = Path(sys.argv[1]), float(sys.argv[2])
    db_url = sys.argv[3] if len(sys.argv) > 3 else None
    meeting_id = int(sys.argv[4]) if len(sys.argv) > 4 else None
    result = asyncio.run(_run(out_dir, seconds, db_url, meeting_id))
    sys.stdout.write(json.dumps(result, default=str) + "\n")


if __name__ == "__main__":
    main()
