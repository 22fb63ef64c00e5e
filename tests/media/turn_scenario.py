"""A commune behind NAT reaches the SFU only through TURN: both halves of the scenario (see tests/media/test_turn.py).

``python -m tests.media.turn_scenario sfu CLIENT_NS ICE_JSON SECONDS CONNECT_TIMEOUT`` runs in the SFU's
namespace: an SFU, and the client started in ``CLIENT_NS`` (``... client ICE_JSON CONNECT_TIMEOUT``) whose offer it
answers over the pipe. It prints one
JSON line: the client's selected candidate pair, the SFU's, and how many frames the SFU received from the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from meeting.media.sfu import Peer, Sfu
from meeting.media.testpeer import SyntheticAudio, SyntheticVideo
from meeting.media.turn import rtc_ice_servers


def _pair(pc: RTCPeerConnection) -> dict[str, Any] | None:
    """The nominated candidate pair of the (bundled) ICE transport, as aioice holds it."""
    for transceiver in pc.getTransceivers():
        connection = transceiver.receiver.transport.transport.iceGatherer._connection
        for pair in connection._nominated.values():
            local, remote = pair.local_candidate, pair.remote_candidate
            return {"local": {"type": local.type, "host": local.host, "port": local.port},
                    "remote": {"type": remote.type, "host": remote.host, "port": remote.port}}
    return None


def _candidate_types(sdp: str) -> list[str]:
    return sorted({line.split(" typ ")[1].split()[0] for line in sdp.splitlines() if " typ " in line})


async def client(ice_json: str, connect_timeout: float) -> None:
    """The commune: publishes synthetic video + audio, configured only with what ``GET /api/v1/turn`` returned."""
    loop = asyncio.get_running_loop()
    pc = RTCPeerConnection(RTCConfiguration(iceServers=rtc_ice_servers(json.loads(ice_json))))
    live = asyncio.Event()
    live.set()
    pc.addTrack(SyntheticVideo(320, 180, 15, 60, live))
    pc.addTrack(SyntheticAudio(live))
    await pc.setLocalDescription(await pc.createOffer())
    print(json.dumps({"offer": pc.localDescription.sdp, "candidates": _candidate_types(pc.localDescription.sdp)}),
          flush=True)
    answer = json.loads(await loop.run_in_executor(None, sys.stdin.readline))
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
    t0 = time.monotonic()
    while pc.connectionState not in ("connected", "failed", "closed") and time.monotonic() - t0 < connect_timeout:
        await asyncio.sleep(0.1)
    print(json.dumps({"state": pc.connectionState, "connect_s": time.monotonic() - t0, "pair": _pair(pc)}),
          flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)  # until the SFU side has measured
    await pc.close()


async def sfu_side(client_ns: str, ice_json: str, seconds: float, connect_timeout: float) -> dict[str, Any]:
    sfu = Sfu()
    await sfu.start()
    proc = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", client_ns, sys.executable, "-m", "tests.media.turn_scenario", "client", ice_json,
        str(connect_timeout),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=2**22,
    )
    assert proc.stdin is not None and proc.stdout is not None
    out: dict[str, Any] = {}
    try:
        offer = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
        out["client_candidates"] = offer["candidates"]
        peer_id, answer = await sfu.join("turn-room", "xa-nat", offer["offer"], is_host=True)
        out["sfu_candidates"] = _candidate_types(answer)
        proc.stdin.write((json.dumps({"sdp": answer}) + "\n").encode())
        await proc.stdin.drain()
        state = json.loads(await asyncio.wait_for(proc.stdout.readline(), connect_timeout + 15))
        out["client"] = state
        room = sfu.rooms.get("turn-room")
        peer: Peer | None = room.peers.get(peer_id) if room is not None else None
        if state["state"] == "connected" and peer is not None:
            out["sfu_pair"] = _pair(peer.pc)
            # as a subscriber would: ask for a keyframe until pictures flow (a keyframe hit by loss on a loaded
            # machine leaves the jitter buffer waiting otherwise)
            t1 = time.monotonic()
            while peer.sources["video"].frames == 0 and time.monotonic() - t1 < 10:
                peer.sources["video"].request_keyframe()
                await asyncio.sleep(0.5)
            out["first_video_s"] = time.monotonic() - t1
            before = {k: s.frames for k, s in peer.sources.items()}
            await asyncio.sleep(seconds)
            out["frames"] = {k: s.frames - before.get(k, 0) for k, s in peer.sources.items()}
            out["seconds"] = seconds
        proc.stdin.write(b"done\n")
        await proc.stdin.drain()
        await asyncio.wait_for(proc.wait(), 15)
    finally:
        if proc.returncode is None:
            proc.kill()
            with contextlib.suppress(ProcessLookupError):
                await proc.wait()
        await sfu.stop()
    return out


def main() -> None:
    if sys.argv[1] == "client":
        asyncio.run(client(sys.argv[2], float(sys.argv[3])))
        return
    result = asyncio.run(sfu_side(sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5])))
    sys.stdout.write(json.dumps(result, default=str) + "\n")


if __name__ == "__main__":
    main()
