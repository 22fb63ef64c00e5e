"""The one place that bends aiortc so the SFU forwards encoded media: frames out of a receiver, packets into a sender.

aiortc's ``RTCRtpReceiver`` always decodes: its jitter buffer hands ``(codec, JitterFrame)`` pairs to a decoder
queue read by a decoder thread. Its ``RTCRtpSender`` asks ``get_encoder(codec)`` for an object that either
encodes a decoded frame or *packs* an ``av.Packet``. This module replaces exactly those two objects, per instance:

* :func:`tap_receiver` swaps the receiver's decoder queue for a :class:`_FrameTap` that calls us with every
  complete encoded frame. The decoder thread still starts (aiortc checks that it exists) but it only ever
  waits for the end-of-stream marker, so no decoder is created. Jitter buffer, NACK generation, PLI on loss,
  REMB and receiver reports stay aiortc's own.
* :func:`prime_sender` puts a :class:`PassthroughPacker` where the sender keeps its encoder, so ``get_encoder``
  is never called and ``encode`` can never run; ``pack`` reuses aiortc's own payloaders (which create no FFmpeg
  context). It also routes the subscriber's PLI/FIR to our callback instead of the unused "force keyframe" flag,
  and (with :data:`FAST_SEND`) runs :func:`_forward_rtp` instead of aiortc's send loop: the same RTP on the wire,
  but what aiortc does per packet that only changes per frame (two NTP clock reads through ``datetime``, the
  header-extension block, debug-log calls, sender-report counters) is done once per frame (and the NTP time
  without ``datetime``), and a packet on a
  plain UDP candidate pair goes SRTP-protect → ``sendto`` without aiortc's and aioice's four coroutine layers
  (``_send_rtp`` → ``Connection.send`` → ``sendto`` → ``StunProtocol.send_data``); a TURN-relayed pair keeps
  aioice's path. The send loop is the SFU's hot path: it runs for every packet times every subscriber.

Both touch name-mangled private attributes of the pinned aiortc (see ``AIORTC_VERSION``); they check those
attributes exist and raise :class:`PassthroughError` otherwise, and ``tests/media/test_passthrough.py`` pins the
behaviour, so an aiortc upgrade that moves the seam fails loudly instead of silently decoding again.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import queue
import struct
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aioice.ice
import aiortc
import av
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcdtlstransport import RTCDtlsTransport, State
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtcrtpsender import RTCRtpSender, random_sequence_number
from aiortc.rtp import RTP_HISTORY_SIZE, HeaderExtensions, RtpPacket
from aiortc.utils import random32

from meeting.errors import MeetingError

if TYPE_CHECKING:
    from av.stream import Stream

    AvPacket = av.Packet[Stream]
else:
    AvPacket = av.Packet

logger = logging.getLogger(__name__)

AIORTC_VERSION = "1.16.0"
"""The aiortc release whose private receiver/sender layout this module was written against (pinned in pyproject)."""

_RX_QUEUE = "_RTCRtpReceiver__decoder_queue"
_RX_STARTED = "_RTCRtpReceiver__started"
_TX_ENCODER = "_RTCRtpSender__encoder"
_TX_HISTORY = "_RTCRtpSender__rtp_history"
_TX_TRACK = "_RTCRtpSender__track"
_TX_MID = "_RTCRtpSender__mid"
_TX_EXT_MAP = "_RTCRtpSender__rtp_header_extensions_map"
_TX_RTP_STARTED = "_RTCRtpSender__rtp_started"
_TX_RTP_EXITED = "_RTCRtpSender__rtp_exited"
_TX_SR = ("_RTCRtpSender__ntp_timestamp", "_RTCRtpSender__rtp_timestamp", "_RTCRtpSender__octet_count",
          "_RTCRtpSender__packet_count")
_TX_ATTRS = (_TX_ENCODER, _TX_HISTORY, _TX_TRACK, _TX_MID, _TX_EXT_MAP, _TX_RTP_STARTED, _TX_RTP_EXITED, *_TX_SR)

FAST_SEND = True
"""Forwarding senders run :func:`_forward_rtp` (False: aiortc's own ``_run_rtp``, for A/B measurements only)."""

CLOCK_RATES = {"video": 90000, "audio": 48000}


class PassthroughError(MeetingError, RuntimeError):
    """aiortc does not look like the version the pass-through seam was written for, or it was misused."""

    http_status = 500


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """One complete encoded frame as the publisher sent it (VP8/H.264 picture or one Opus packet)."""

    kind: str
    codec: str
    data: bytes
    timestamp: int
    """RTP clock ticks, starting at 0 for the first frame of this receiver (aiortc's TimestampMapper)."""
    keyframe: bool
    received_at: float


FrameCallback = Callable[[EncodedFrame], None]


def is_keyframe(codec: str, data: bytes) -> bool:
    """Tell a picture that a decoder can start from, reading only the codec's frame header."""
    if not data:
        return False
    name = codec.lower()
    if name == "vp8":
        # RFC 6386 §9.1: bit 0 of the frame tag is 0 for a key frame.
        return (data[0] & 0x01) == 0
    if name == "h264":
        # Annex-B stream as aiortc's depayloader builds it: look for an IDR slice (5) or an SPS (7).
        i = 0
        n = len(data)
        while i + 3 < n:
            if data[i] == 0 and data[i + 1] == 0 and (data[i + 2] == 1 or (data[i + 2] == 0 and data[i + 3] == 1)):
                start = i + 3 if data[i + 2] == 1 else i + 4
                if start < n and (data[start] & 0x1F) in (5, 7):
                    return True
                i = start
            else:
                i += 1
        return False
    return True  # audio: every packet stands alone


def _check_version() -> None:
    if aiortc.__version__ != AIORTC_VERSION:
        raise PassthroughError(
            f"aiortc {aiortc.__version__} is installed but meeting.media.passthrough was written for "
            f"{AIORTC_VERSION}; re-check the receiver/sender seam and update AIORTC_VERSION"
        )


class _FrameTap:
    """Stands in for the receiver's decoder queue: encoded frames go to a callback, only ``None`` to the thread."""

    def __init__(self, kind: str, on_frame: FrameCallback) -> None:
        self._kind = kind
        self._on_frame = on_frame
        self._idle: queue.Queue[None] = queue.Queue()
        self.frames = 0

    def put(self, task: tuple[RTCRtpCodecParameters, Any] | None) -> None:
        if task is None:  # end of stream: let the (idle) decoder thread finish and end the remote track
            self._idle.put(None)
            return
        codec, frame = task
        self.frames += 1
        data = bytes(frame.data)
        self._on_frame(
            EncodedFrame(
                kind=self._kind,
                codec=codec.name,
                data=data,
                timestamp=int(frame.timestamp),
                keyframe=is_keyframe(codec.name, data),
                received_at=time.monotonic(),
            )
        )

    def get(self) -> None:
        return self._idle.get()


def tap_receiver(receiver: RTCRtpReceiver, kind: str, on_frame: FrameCallback) -> _FrameTap:
    """Make ``receiver`` hand complete encoded frames to ``on_frame`` instead of decoding them.

    Must be called before aiortc starts the receiver (i.e. in the peer connection's ``track`` event, before
    ICE/DTLS complete); ``on_frame`` runs on the event loop, inside aiortc's RTP handling, so keep it cheap.
    """
    _check_version()
    if not hasattr(receiver, _RX_QUEUE) or not hasattr(receiver, _RX_STARTED):
        raise PassthroughError("RTCRtpReceiver has no decoder queue to tap: aiortc internals changed")
    if getattr(receiver, _RX_STARTED):
        raise PassthroughError("the receiver already started decoding; tap it in the 'track' event")
    tap = _FrameTap(kind, on_frame)
    setattr(receiver, _RX_QUEUE, tap)
    return tap


_IN_FLIGHT: set[asyncio.Future[None]] = set()
"""PLI sends under way (asyncio keeps only weak references to tasks)."""


def request_keyframe(receiver: RTCRtpReceiver) -> bool:
    """Send a PLI upstream for every SSRC the receiver heard recently; False when there is none yet."""
    sources = receiver.getSynchronizationSources()
    if not sources:
        return False
    for source in sources:
        task = asyncio.ensure_future(receiver._send_rtcp_pli(source.source))
        _IN_FLIGHT.add(task)
        task.add_done_callback(_IN_FLIGHT.discard)
    return True


class PassthroughPacker:
    """Sits where aiortc keeps a sender's encoder: packs pre-encoded packets with aiortc's payloaders, never encodes.

    ``target_bitrate`` is set by aiortc when the subscriber sends REMB, which makes it our bandwidth estimate.
    """

    def __init__(self, codec: str) -> None:
        name = codec.lower()
        self.codec = name
        self._payloader: Vp8Encoder | H264Encoder | None
        if name == "vp8":
            self._payloader = Vp8Encoder()  # pack() only; its FFmpeg context is created lazily by encode()
        elif name == "h264":
            self._payloader = H264Encoder()
        elif name == "opus":
            self._payloader = None
        else:
            raise PassthroughError(f"cannot forward codec {codec!r}: only VP8, H264 and Opus are packed")
        self.target_bitrate: int | None = None
        self.packed = 0
        self.direct_packets = 0
        """Packets the forwarding loop sent straight to the UDP socket (SRTP-protected, no aioice layers)."""

    def pack(self, packet: AvPacket) -> tuple[list[bytes], int]:
        self.packed += 1
        if self._payloader is None:
            assert packet.pts is not None
            return [bytes(packet)], int(packet.pts)
        return self._payloader.pack(packet)

    def encode(self, frame: object, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        raise PassthroughError("a forwarding sender was handed a decoded frame: the SFU never encodes")

    @property
    def opened_codec_context(self) -> bool:
        """True if aiortc's payloader ever opened an FFmpeg encoder (it must not: we only pack)."""
        return self._payloader is not None and getattr(self._payloader, "codec", None) is not None


def prime_sender(sender: RTCRtpSender, codec: str, on_keyframe_request: Callable[[], None]) -> PassthroughPacker:
    """Make ``sender`` pack what its track yields and route the subscriber's PLI/FIR to ``on_keyframe_request``."""
    _check_version()
    if not hasattr(sender, _TX_ENCODER) or not hasattr(sender, "_send_keyframe"):
        raise PassthroughError("RTCRtpSender has no encoder slot or keyframe hook: aiortc internals changed")
    packer = PassthroughPacker(codec)
    setattr(sender, _TX_ENCODER, packer)
    sender._send_keyframe = on_keyframe_request  # type: ignore[method-assign]
    if FAST_SEND:
        missing = [name for name in _TX_ATTRS if not hasattr(sender, name)]
        if missing or not hasattr(sender, "_run_rtp"):
            raise PassthroughError(f"RTCRtpSender lacks {missing or ['_run_rtp']}: aiortc internals changed")
        # aiortc starts the loop as ``self._run_rtp(codec)`` in ``send()``: an instance attribute wins
        sender._run_rtp = lambda codec: _forward_rtp(sender, codec)  # type: ignore[method-assign]
    return packer


_DTLS_TX = ("_RTCDtlsTransport__tx_bytes", "_RTCDtlsTransport__tx_packets")


_CONNECTED = State.CONNECTED
_NTP_EPOCH_OFFSET = 2208988800
"""Seconds from 1900-01-01 (NTP) to 1970-01-01 (Unix)."""


def ntp_now() -> int:
    """What ``aiortc.clock.current_ntp_time()`` returns (64-bit NTP time of the wall clock), without building and
    subtracting ``datetime`` objects: that cost a visible share of the send loop."""
    t = time.time() + _NTP_EPOCH_OFFSET
    seconds = int(t)
    return (seconds << 32) | int((t - seconds) * 4294967296)


def _nominated_pair(dtls: RTCDtlsTransport) -> Any:
    """The ICE pair DTLS sends on, or None while DTLS is not connected (or aioice looks different)."""
    if dtls._state is not _CONNECTED:
        return None
    try:
        return dtls.transport._connection._nominated.get(1)
    except AttributeError:  # another aioice layout: the generic path still works
        return None


def _udp_path(dtls: RTCDtlsTransport, pair: Any) -> tuple[Callable[[bytes], bytes], Callable[[bytes, Any], None],
                                                           Any] | None:
    """``(srtp_protect, sendto, remote_addr)`` for a plain UDP pair, else None (use aiortc's path).

    The loop re-reads the nominated pair for every frame and never yields inside a frame, so the pair cannot change
    under a frame's packets; when the connection closes aioice forgets the pair and the loop falls back to aiortc's
    path, which raises ``ConnectionError`` as before. A TURN-relayed pair (its protocol is not aioice's
    ``StunProtocol``) wraps data in ChannelData, so it keeps aioice's own path.
    """
    protocol = pair.protocol
    if type(protocol) is not aioice.ice.StunProtocol or protocol.transport is None:
        return None
    return dtls._tx_srtp.protect, protocol.transport.sendto, pair.remote_addr


_RTP_HEADER = struct.Struct("!BBHLL")
_EXT_HEADER = struct.Struct("!HH")


def serialize_rtp(pt: int, marker: int, seq: int, timestamp: int, ssrc: int, ext: bytes, payload: bytes) -> bytes:
    """One RTP packet as ``RtpPacket.serialize`` writes it (no CSRC, no padding); ``ext`` is the packed
    header-extension block (profile, length, values) or empty."""
    first = 0x90 if ext else 0x80
    return _RTP_HEADER.pack(first, (marker << 7) | pt, seq, timestamp, ssrc) + ext + payload


async def _forward_rtp(sender: RTCRtpSender, codec: RTCRtpCodecParameters) -> None:
    """aiortc 1.16's ``RTCRtpSender._run_rtp`` for packed frames, with per-frame work done once per frame.

    Same wire format, sequence numbers, RTP history (NACK retransmission reads it) and sender-report counters;
    ``abs-send-time`` is read once per frame (its packets leave within microseconds, the field has 3.8 µs units
    but the loop never yields between them). Only pre-encoded packets reach it: ``pack`` never encodes.
    """
    getattr(sender, _TX_RTP_STARTED).set()
    history: dict[int, RtpPacket] = getattr(sender, _TX_HISTORY)
    ext_map = getattr(sender, _TX_EXT_MAP)
    sequence_number = random_sequence_number()
    timestamp_origin = random32()
    octets = packets = 0
    direct_pair: Any = None
    direct: tuple[Callable[[bytes], bytes], Callable[[bytes, Any], None], Any] | None = None
    try:
        pt = codec.payloadType
        if pt is None:
            raise PassthroughError("a forwarding sender started without a negotiated payload type")
        while True:
            track = getattr(sender, _TX_TRACK)
            if not track:
                await asyncio.sleep(0.02)
                continue
            data = await track.recv()
            if not sender._enabled:
                continue
            payloads, ts = getattr(sender, _TX_ENCODER).pack(data)
            if not payloads:
                continue
            timestamp = (timestamp_origin + ts) & 0xFFFFFFFF
            ntp = ntp_now()
            extensions = HeaderExtensions(mid=getattr(sender, _TX_MID), abs_send_time=(ntp >> 14) & 0x00FFFFFF)
            profile, values = ext_map.set(extensions)
            ext = _EXT_HEADER.pack(profile, len(values) >> 2) + values if values else b""
            ssrc = sender._ssrc
            transport = sender.transport
            pair = _nominated_pair(transport)
            if pair is not direct_pair:
                direct_pair, direct = pair, (_udp_path(transport, pair) if pair is not None else None)
            last = len(payloads) - 1
            wire = 0
            for i, payload in enumerate(payloads):
                marker = 1 if i == last else 0
                packet = RtpPacket(pt, marker, sequence_number, timestamp, ssrc, payload)
                packet.extensions = extensions  # shared by the frame's packets, read only (retransmission)
                history[sequence_number % RTP_HISTORY_SIZE] = packet
                raw = serialize_rtp(pt, marker, sequence_number, timestamp, ssrc, ext, payload)
                if direct is None:
                    await transport._send_rtp(raw)
                else:
                    protected = direct[0](raw)
                    direct[1](protected, direct[2])
                    wire += len(protected)
                octets += len(payload)
                packets += 1
                sequence_number = (sequence_number + 1) & 0xFFFF
            if direct is not None:  # the DTLS transport's own counters (its getStats), as _send_rtp keeps them
                for name, add in zip(_DTLS_TX, (wire, len(payloads)), strict=True):
                    setattr(transport, name, getattr(transport, name) + add)
                getattr(sender, _TX_ENCODER).direct_packets += len(payloads)
            for name, value in zip(_TX_SR, (ntp, timestamp, octets, packets), strict=True):
                setattr(sender, name, value)
    except (asyncio.CancelledError, ConnectionError, MediaStreamError):
        pass
    except Exception:  # aiortc's loop does the same: stop() waits for the exit flag below
        logger.warning("forwarding sender failed: %s", traceback.format_exc())
    track = getattr(sender, _TX_TRACK)
    if track:
        track.stop()
        setattr(sender, _TX_TRACK, None)
    setattr(sender, _TX_ENCODER, None)
    getattr(sender, _TX_RTP_EXITED).set()


_TIME_BASES = {kind: fractions.Fraction(1, rate) for kind, rate in CLOCK_RATES.items()}


def make_packet(frame: EncodedFrame, timestamp: int) -> AvPacket:
    """Wrap an encoded frame as the ``av.Packet`` aiortc's sender packs: payload, pts in RTP ticks, 1/clock."""
    packet = av.Packet(frame.data)
    packet.pts = timestamp
    packet.time_base = _TIME_BASES[frame.kind]
    return packet


async def resend_recent(sender: RTCRtpSender) -> int:
    """Retransmit what the sender still holds in its RTP history (aiortc keeps the last 128 packets).

    Used when video resumes after a lossy stretch: an aiortc receiver's jitter buffer waits at the first hole
    until 512 newer packets arrive, and it NACKs a hole only when a new gap appears, so holes left by the
    loss would stall it for seconds. Replaying the tail (as RTX where negotiated) lets it complete or move on.
    """
    _check_version()
    history = getattr(sender, _TX_HISTORY, None)
    if history is None:
        raise PassthroughError("RTCRtpSender has no RTP history: aiortc internals changed")
    packets = sorted(history.values(), key=lambda p: p.sequence_number)
    if packets and packets[-1].sequence_number - packets[0].sequence_number > 0x8000:  # wrapped
        packets.sort(key=lambda p: (p.sequence_number + 0x8000) & 0xFFFF)
    for packet in packets:
        await sender._retransmit(packet.sequence_number)
    return len(packets)


class EncodedTrack(MediaStreamTrack):
    """A track whose ``recv()`` yields ``av.Packet``s (payload, pts in RTP ticks, time base 1/clock) to a sender.

    Frames are pushed with :meth:`push`; the queue is bounded so a stalled sender costs memory only up to
    ``maxsize``: when it is full the oldest frame is dropped and, for video, the track waits for the next
    keyframe (a decoder cannot continue after a gap) and calls ``on_gap`` so one can be requested upstream.
    """

    def __init__(self, kind: str, *, maxsize: int = 64, on_gap: Callable[[], None] | None = None) -> None:
        super().__init__()
        self.kind = kind
        self._queue: asyncio.Queue[AvPacket | None] = asyncio.Queue(maxsize=maxsize)
        self._on_gap = on_gap
        self.waiting_keyframe = kind == "video"
        self.paused = False
        self.forwarded = 0
        self.dropped = 0

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def wait_for_keyframe(self) -> None:
        """Drop pictures until the next keyframe (after a source switch, a resume or a gap)."""
        if self.kind == "video":
            self.waiting_keyframe = True

    def push(self, frame: EncodedFrame, packet: AvPacket) -> None:
        """Queue ``packet`` (made once per frame by :func:`make_packet`, shared by every subscriber)."""
        if self.readyState != "live" or self.paused:
            return
        if self.waiting_keyframe:
            if not frame.keyframe:
                self.dropped += 1
                return
            self.waiting_keyframe = False
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
            if self.kind == "video":
                self.waiting_keyframe = True
                if self._on_gap is not None:
                    self._on_gap()
                return
        self._queue.put_nowait(packet)

    def prime(self, frames: Sequence[tuple[EncodedFrame, AvPacket]]) -> bool:
        """Start a waiting video track from a cached picture group (keyframe first) instead of the next keyframe.

        Returns False, changing nothing, when the track is not waiting, is paused or ended, the group does not
        start with a keyframe, or it would not fit in the queue next to what is queued already (a queue that
        overflows right away would only ask for a keyframe again).
        """
        if (not self.waiting_keyframe or self.paused or self.readyState != "live" or not frames
                or not frames[0][0].keyframe or self._queue.qsize() + len(frames) > self._queue.maxsize // 2):
            return False
        self.waiting_keyframe = False
        for _, packet in frames:
            self._queue.put_nowait(packet)
        return True

    async def recv(self) -> AvPacket:  # type: ignore[override]
        if self.readyState != "live":
            raise MediaStreamError
        packet = await self._queue.get()
        if packet is None:
            raise MediaStreamError
        self.forwarded += 1
        return packet

    def stop(self) -> None:
        if self.readyState == "live" and not self._queue.full():
            self._queue.put_nowait(None)
        super().stop()
