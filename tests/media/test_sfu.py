"""SFU logic that needs no network: keyframe-request rate limiting, routing of outputs to sources, config."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiortc import RTCPeerConnection

from meeting.media import sfu as sfu_mod
from meeting.media.passthrough import EncodedFrame, EncodedTrack
from meeting.media.sfu import MediaError, Peer, Room, Sfu, SfuConfig, Source, rtc_configuration


def test_every_peer_connection_has_no_ice_servers() -> None:
    # aiortc's default is a public STUN host that must never be contacted
    assert rtc_configuration().iceServers == []


def test_keyframe_requests_are_rate_limited_and_coalesced(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[float] = []

    def fake_pli(receiver: Any) -> bool:
        sent.append(time.monotonic())
        return True

    monkeypatch.setattr(sfu_mod, "request_keyframe", fake_pli)

    async def scenario() -> Source:
        pc = RTCPeerConnection(configuration=rtc_configuration())
        receiver = pc.addTransceiver("video", direction="recvonly").receiver
        room = Room("r")
        peer = Peer(peer_id="p", site_id="s", is_host=True, pc=pc, notify=None)
        source = Source(room, peer, "video", receiver, SfuConfig(keyframe_min_interval_s=0.2))
        for _ in range(10):  # a burst of PLIs from 10 subscribers
            source.request_keyframe()
        await asyncio.sleep(0.05)
        for _ in range(10):
            source.request_keyframe()
        await asyncio.sleep(0.4)
        source.close()
        await pc.close()
        return source

    source = asyncio.run(scenario())
    assert len(sent) == 2, "a burst must give one PLI now and one coalesced PLI after the interval"
    assert sent[1] - sent[0] >= 0.19
    assert source.keyframe_requests == 2


def test_source_maps_timestamps_onto_the_room_timeline_and_shares_one_packet() -> None:
    async def scenario() -> tuple[list[Any], list[Any]]:
        pc = RTCPeerConnection(configuration=rtc_configuration())
        receiver = pc.addTransceiver("video", direction="recvonly").receiver
        room = Room("r", t0=time.monotonic() - 10.0)  # the room has run for 10 s
        peer = Peer(peer_id="p", site_id="s", is_host=True, pc=pc, notify=None)
        source = Source(room, peer, "video", receiver, SfuConfig())
        a, b = EncodedTrack("video"), EncodedTrack("video")
        source.subscribers |= {a, b}
        for i, key in enumerate([True, False]):
            source.on_frame(EncodedFrame("video", "VP8", b"\x00" if key else b"\x01", i * 6000, key, 0.0))
        got_a = [await a.recv() for _ in range(2)]
        got_b = [await b.recv() for _ in range(2)]
        await pc.close()
        return got_a, got_b

    got_a, got_b = asyncio.run(scenario())
    assert got_a[0] is got_b[0], "one av.Packet per frame, shared by all subscribers"
    assert 10 * 90000 <= got_a[0].pts < 11 * 90000
    assert got_a[1].pts - got_a[0].pts == 6000


def test_floor_needs_a_running_room() -> None:
    async def scenario() -> None:
        sfu = Sfu()
        await sfu.start()
        try:
            with pytest.raises(MediaError):
                sfu.grant_floor("nope", "03127")
            with pytest.raises(MediaError):
                sfu.revoke_floor("nope")
        finally:
            await sfu.stop()
        assert sfu.state == "stopped"
        with pytest.raises(MediaError):
            await sfu.join("r", "s", "v=0\r\n")

    asyncio.run(scenario())
