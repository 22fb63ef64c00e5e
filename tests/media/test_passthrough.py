"""Pins the pass-through seam against the installed aiortc: real receivers and senders, real VP8 from libvpx.

If an aiortc upgrade moves the decoder queue, the encoder slot or the keyframe hook, these fail loudly.
"""

from __future__ import annotations

import asyncio
import fractions
import re
from pathlib import Path
from typing import Any

import aiortc
import aiortc.rtcrtpreceiver
import aiortc.rtcrtpsender
import av
import numpy as np
import pytest
from aiortc import RTCPeerConnection
from aiortc.codecs.vpx import Vp8Encoder, vp8_depayload
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpReceiveParameters
from aiortc.rtcrtpreceiver import RemoteStreamTrack
from aiortc.rtp import RTCP_PSFB_FIR, RTCP_PSFB_PLI, RtcpPsfbPacket, RtpPacket

from meeting.media.passthrough import (
    AIORTC_VERSION,
    EncodedFrame,
    EncodedTrack,
    PassthroughError,
    PassthroughPacker,
    is_keyframe,
    make_packet,
    prime_sender,
    resend_recent,
    tap_receiver,
)
from meeting.media.sfu import rtc_configuration

REPO = Path(__file__).resolve().parents[2]
VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
OPUS = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111)


def _vp8_frames(n: int) -> list[bytes]:
    """Really encoded VP8 pictures (libvpx through PyAV): the first is a keyframe, the rest are not."""
    ctx = av.CodecContext.create("libvpx", "w")
    ctx.width, ctx.height, ctx.pix_fmt = 160, 96, "yuv420p"
    ctx.time_base = fractions.Fraction(1, 15)
    ctx.framerate = fractions.Fraction(15, 1)
    ctx.gop_size = 1000
    ctx.bit_rate = 300_000
    out: list[bytes] = []
    for i in range(n + 4):
        img = np.full((96 * 3 // 2, 160), 128, dtype=np.uint8)
        img[: 96, (i * 7) % 150 : (i * 7) % 150 + 10] = 250
        frame = av.VideoFrame.from_ndarray(img, format="yuv420p")
        frame.pts = i
        out.extend(bytes(p) for p in ctx.encode(frame))
    out.extend(bytes(p) for p in ctx.encode(None))
    return out[:n]


def _frame(kind: str, data: bytes, ts: int, key: bool) -> EncodedFrame:
    return EncodedFrame(kind=kind, codec="VP8" if kind == "video" else "opus", data=data, timestamp=ts,
                        keyframe=key, received_at=0.0)


def test_aiortc_version_is_the_pinned_one() -> None:
    assert aiortc.__version__ == AIORTC_VERSION
    pyproject = (REPO / "pyproject.toml").read_text()
    assert re.search(rf'"aiortc=={re.escape(AIORTC_VERSION)}"', pyproject), "pin aiortc in pyproject.toml"


def test_another_aiortc_version_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aiortc, "__version__", "9.9.9")
    with pytest.raises(PassthroughError, match=r"9\.9\.9"):
        tap_receiver(object(), "video", lambda f: None)  # type: ignore[arg-type]


def test_keyframe_detection_on_real_vp8() -> None:
    frames = _vp8_frames(4)
    assert [is_keyframe("VP8", f) for f in frames] == [True, False, False, False]
    assert is_keyframe("H264", b"\x00\x00\x00\x01\x67\x42") is True  # SPS
    assert is_keyframe("H264", b"\x00\x00\x00\x01\x41\x9a") is False  # non-IDR slice
    assert is_keyframe("opus", b"\x01") is True
    assert is_keyframe("VP8", b"") is False


async def _video_receiver() -> tuple[RTCPeerConnection, Any]:
    pc = RTCPeerConnection(configuration=rtc_configuration())
    transceiver = pc.addTransceiver("video", direction="recvonly")
    return pc, transceiver.receiver


def test_receiver_hands_out_encoded_frames_and_never_decodes(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_decoder(codec: Any) -> Any:
        raise AssertionError("get_decoder called: the receiver is decoding")

    monkeypatch.setattr(aiortc.rtcrtpreceiver, "get_decoder", no_decoder)
    frames = _vp8_frames(6)

    async def scenario() -> tuple[list[EncodedFrame], int, bool]:
        pc, receiver = await _video_receiver()
        got: list[EncodedFrame] = []
        tap = tap_receiver(receiver, "video", got.append)
        receiver._track = RemoteStreamTrack(kind="video")
        await receiver.receive(RTCRtpReceiveParameters(codecs=[VP8]))
        seq = 1000
        for i, data in enumerate(frames):
            payloads = Vp8Encoder._packetize(data, picture_id=i)
            for j, payload in enumerate(payloads):
                pkt = RtpPacket(payload_type=96, marker=int(j == len(payloads) - 1), sequence_number=seq,
                                timestamp=5000 + i * 6000, ssrc=1234, payload=payload)
                await receiver._handle_rtp_packet(pkt, arrival_time_ms=i * 66)
                seq += 1
        track = receiver.track
        await receiver.stop()
        ended = False
        try:
            await asyncio.wait_for(track.recv(), 2)
        except MediaStreamError:
            ended = True
        await pc.close()
        return got, tap.frames, ended

    got, tapped, ended = asyncio.run(scenario())
    # the video jitter buffer releases a picture when the next one starts: 6 sent, 5 complete
    assert tapped == 5 and len(got) == 5
    assert [g.data for g in got] == frames[:5], "encoded bytes must come out exactly as the publisher sent them"
    assert [g.timestamp for g in got] == [i * 6000 for i in range(5)]
    assert [g.keyframe for g in got] == [True, False, False, False, False]
    assert ended, "stopping the receiver must still end its remote track"


def test_tap_must_come_before_the_receiver_starts() -> None:
    async def scenario() -> None:
        pc, receiver = await _video_receiver()
        receiver._track = RemoteStreamTrack(kind="video")
        await receiver.receive(RTCRtpReceiveParameters(codecs=[VP8]))
        try:
            with pytest.raises(PassthroughError, match="already started"):
                tap_receiver(receiver, "video", lambda f: None)
        finally:
            await receiver.stop()
            await pc.close()

    asyncio.run(scenario())


def test_sender_packs_forwarded_packets_without_an_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_encoder(codec: Any) -> Any:
        raise AssertionError("get_encoder called: the sender would encode")

    monkeypatch.setattr(aiortc.rtcrtpsender, "get_encoder", no_encoder)
    frames = _vp8_frames(3)

    async def scenario() -> tuple[list[Any], list[Any], PassthroughPacker, PassthroughPacker]:
        pc = RTCPeerConnection(configuration=rtc_configuration())
        video, audio = EncodedTrack("video"), EncodedTrack("audio")
        vsender, asender = pc.addTrack(video), pc.addTrack(audio)
        vpacker = prime_sender(vsender, "VP8", lambda: None)
        apacker = prime_sender(asender, "opus", lambda: None)
        for i, data in enumerate(frames):
            f = _frame("video", data, i * 6000, i == 0)
            video.push(f, make_packet(f, 90000 + i * 6000))
        a = _frame("audio", b"\xfc\x01\x02opus", 0, True)
        audio.push(a, make_packet(a, 480))
        vout = [await vsender._next_encoded_frame(VP8) for _ in frames]
        aout = [await asender._next_encoded_frame(OPUS)]
        await pc.close()
        return vout, aout, vpacker, apacker

    vout, aout, vpacker, apacker = asyncio.run(scenario())
    for i, enc in enumerate(vout):
        assert enc is not None
        assert b"".join(vp8_depayload(p) for p in enc.payloads) == frames[i]
        assert enc.timestamp == 90000 + i * 6000
    assert aout[0] is not None and aout[0].payloads == [b"\xfc\x01\x02opus"] and aout[0].timestamp == 480
    assert vpacker.packed == 3 and apacker.packed == 1
    assert not vpacker.opened_codec_context


def test_subscriber_pli_and_fir_reach_our_callback() -> None:
    async def scenario() -> int:
        pc = RTCPeerConnection(configuration=rtc_configuration())
        sender = pc.addTrack(EncodedTrack("video"))
        calls: list[int] = []
        prime_sender(sender, "VP8", lambda: calls.append(1))
        for fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
            await sender._handle_rtcp_packet(RtcpPsfbPacket(fmt=fmt, ssrc=1, media_ssrc=sender._ssrc))
        await pc.close()
        return len(calls)

    assert asyncio.run(scenario()) == 2


def test_packer_refuses_to_encode_and_unknown_codecs() -> None:
    with pytest.raises(PassthroughError, match="never encodes"):
        PassthroughPacker("vp8").encode(object())
    with pytest.raises(PassthroughError, match="G722"):
        PassthroughPacker("G722")


def test_encoded_track_waits_for_keyframe_and_bounds_its_queue() -> None:
    async def scenario() -> dict[str, Any]:
        gaps: list[int] = []
        track = EncodedTrack("video", maxsize=3, on_gap=lambda: gaps.append(1))
        delta = _frame("video", b"\x01delta", 0, False)
        key = _frame("video", b"\x00key", 0, True)
        track.push(delta, make_packet(delta, 0))  # dropped: a decoder cannot start on a delta frame
        for _ in range(3):
            track.push(key, make_packet(key, 0))
        track.push(delta, make_packet(delta, 0))  # queue full: oldest dropped, wait for keyframe, ask for one
        waiting = track.waiting_keyframe
        first = await track.recv()
        track.paused = True
        track.push(key, make_packet(key, 0))
        return {"dropped": track.dropped, "gaps": len(gaps), "waiting": waiting, "first": bytes(first),
                "size": track._queue.qsize()}

    r = asyncio.run(scenario())
    assert r == {"dropped": 2, "gaps": 1, "waiting": True, "first": b"\x00key", "size": 1}


def test_encoded_track_primes_from_a_picture_group_only_when_it_can_start_there() -> None:
    async def scenario() -> dict[str, Any]:
        key, delta = _frame("video", b"\x00key", 0, True), _frame("video", b"\x01delta", 3000, False)
        group = [(key, make_packet(key, 0)), (delta, make_packet(delta, 3000))]
        track = EncodedTrack("video", maxsize=8)
        no_key = track.prime(group[1:])  # a group must start at a keyframe
        too_big = track.prime(group * 3)  # more than half the queue: it would overflow right away
        primed = track.prime(group)
        again = track.prime(group)  # no longer waiting
        track.push(delta, make_packet(delta, 6000))  # the live frames follow the group
        got = [bytes(await track.recv()) for _ in range(3)]
        return {"no_key": no_key, "too_big": too_big, "primed": primed, "again": again, "got": got,
                "waiting": track.waiting_keyframe}

    r = asyncio.run(scenario())
    assert r == {"no_key": False, "too_big": False, "primed": True, "again": False,
                 "got": [b"\x00key", b"\x01delta", b"\x01delta"], "waiting": False}


def test_resend_recent_reaches_the_sender_history() -> None:
    async def scenario() -> int:
        pc = RTCPeerConnection(configuration=rtc_configuration())
        sender = pc.addTrack(EncodedTrack("video"))
        try:
            return await resend_recent(sender)  # nothing sent yet: an empty history, but the seam must exist
        finally:
            await pc.close()

    assert asyncio.run(scenario()) == 0

    class NoHistory:
        pass

    with pytest.raises(PassthroughError, match="history"):
        asyncio.run(resend_recent(NoHistory()))  # type: ignore[arg-type]


def test_fast_send_loop_puts_aiortcs_rtp_on_the_wire(monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-frame send loop (``FAST_SEND``) must send what aiortc's own loop would: RTP that parses back to the
    frames, continuous sequence numbers, the marker on each frame's last packet, mid + abs-send-time extensions
    byte-identical to ``RtpPacket.serialize``, a history that NACK retransmission replays, sender-report counters."""
    from aiortc.rtcrtpparameters import (
        RTCRtcpParameters,
        RTCRtpHeaderExtensionParameters,
        RTCRtpSendParameters,
    )
    from aiortc.rtp import HeaderExtensionsMap, is_rtcp

    import meeting.media.passthrough as passthrough

    monkeypatch.setattr(passthrough, "FAST_SEND", True)
    frames = _vp8_frames(4)
    exts = [RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
            RTCRtpHeaderExtensionParameters(id=3, uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time")]
    params = RTCRtpSendParameters(codecs=[VP8], headerExtensions=exts, muxId="7", rtcp=RTCRtcpParameters(cname="x"))

    async def scenario() -> tuple[list[bytes], list[bytes], dict[str, Any], Any]:
        pc = RTCPeerConnection(configuration=rtc_configuration())
        track = EncodedTrack("video")
        sender = pc.addTrack(track)
        prime_sender(sender, "VP8", lambda: None)
        sent: list[bytes] = []

        async def capture(data: bytes) -> None:
            sent.append(data)

        monkeypatch.setattr(sender.transport, "_send_rtp", capture)
        await sender.send(params)
        for i, data in enumerate(frames):
            f = _frame("video", data, i * 6000, i == 0)
            track.push(f, make_packet(f, i * 6000))
        for _ in range(100):
            if sum(1 for d in sent if not is_rtcp(d)) and track.queued == 0:
                break
            await asyncio.sleep(0.01)
        rtp = [d for d in sent if not is_rtcp(d)]
        first = RtpPacket.parse(rtp[0])
        await sender._retransmit(first.sequence_number)  # a NACK for the first packet
        resent = [d for d in sent if not is_rtcp(d)][len(rtp):]
        stats = {s.type: s for s in (await sender.getStats()).values()}
        await pc.close()
        return rtp, resent, stats, sender

    rtp, resent, stats, sender = asyncio.run(scenario())
    assert "_run_rtp" in vars(sender)  # our loop sent this, not aiortc's
    ext_map = HeaderExtensionsMap()
    ext_map.configure(params)
    packets = [RtpPacket.parse(d, ext_map) for d in rtp]
    seqs = [p.sequence_number for p in packets]
    assert seqs == [(seqs[0] + i) & 0xFFFF for i in range(len(seqs))]
    by_ts: dict[int, list[RtpPacket]] = {}
    for p in packets:
        by_ts.setdefault(p.timestamp, []).append(p)
        assert p.payload_type == VP8.payloadType and p.ssrc == sender._ssrc
        assert p.extensions.mid == "7" and p.extensions.abs_send_time is not None
        assert RtpPacket.serialize(p, ext_map) == rtp[packets.index(p)]  # byte-identical to aiortc's serializer
    assert len(by_ts) == len(frames)
    stamps = sorted(by_ts)
    assert [(t - stamps[0]) & 0xFFFFFFFF for t in stamps] == [i * 6000 for i in range(len(frames))]
    for i, ts in enumerate(stamps):
        group = by_ts[ts]
        assert [p.marker for p in group] == [0] * (len(group) - 1) + [1]
        assert b"".join(vp8_depayload(p.payload) for p in group) == frames[i]
    assert resent and RtpPacket.parse(resent[0]).payload == packets[0].payload  # NACK served from the history
    out = stats["outbound-rtp"]
    assert out.packetsSent == len(rtp) and out.bytesSent == sum(len(p.payload) for p in packets)


def test_fast_send_loop_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    import meeting.media.passthrough as passthrough

    async def scenario(fast: bool) -> bool:
        monkeypatch.setattr(passthrough, "FAST_SEND", fast)
        pc = RTCPeerConnection(configuration=rtc_configuration())
        sender = pc.addTrack(EncodedTrack("video"))
        prime_sender(sender, "VP8", lambda: None)
        await pc.close()
        return "_run_rtp" in vars(sender)

    assert asyncio.run(scenario(True)) is True
    assert asyncio.run(scenario(False)) is False


def test_ntp_now_is_aiortcs_ntp_clock() -> None:
    from aiortc import clock

    from meeting.media.passthrough import ntp_now

    ours, theirs = ntp_now(), clock.current_ntp_time()
    assert abs(ours - theirs) < (1 << 32) // 100  # same clock, read 10 ms apart at most
    assert ours >> 32 > 3_900_000_000  # seconds since 1900, not since 1970
