"""Runs INSIDE the live tests' namespace: the SFU in this process, a real aiortc publisher that knows nothing of
``mute`` (it keeps sending, like a misbehaving client) and a probe that counts what reaches it. Prints one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from meeting.media.harness import Harness, PeerGroup
from meeting.media.sfu import Sfu, SfuConfig


async def _counts(group: PeerGroup) -> tuple[int, int]:
    rep = (await group.report())[0]
    return int(rep.get("audio_packets", 0)), int(rep.get("video_frames", 0))


async def _sent(group: PeerGroup) -> int:
    return int((await group.report())[0].get("sent_audio_packets", 0))


async def _window(probe: PeerGroup, pub: PeerGroup, seconds: float = 2.0) -> dict[str, int]:
    a0, v0 = await _counts(probe)
    s0 = await _sent(pub)
    await asyncio.sleep(seconds)
    a1, v1 = await _counts(probe)
    s1 = await _sent(pub)
    return {"audio": a1 - a0, "video": v1 - v0, "sent_audio": s1 - s0}


async def scenario(harness: Harness) -> dict[str, Any]:
    sfu, room = harness.sfu, harness.room
    pub = await harness.add("replay", site="host", is_host=True)
    probe = await harness.add("light", site="xa-b")
    for g in (pub, probe):
        await harness.wait_connected(g)
    await asyncio.sleep(2.0)
    out: dict[str, Any] = {"before": await _window(probe, pub)}
    sfu.set_muted(room, "host", True)
    await asyncio.sleep(0.5)
    out["muted"] = await _window(probe, pub)
    host = sfu.room(room).host()
    assert host is not None
    out["dropped_at_sfu"] = host.sources["audio"].muted_frames
    sfu.set_muted(room, "host", False)
    await asyncio.sleep(0.5)
    out["unmuted"] = await _window(probe, pub)
    return out


async def _run() -> dict[str, Any]:
    sfu = Sfu(SfuConfig())
    await sfu.start()
    harness = Harness(sfu)
    try:
        return await scenario(harness)
    finally:
        await harness.close()
        await sfu.stop()


if __name__ == "__main__":
    sys.stdout.write(json.dumps(asyncio.run(_run())) + "\n")
