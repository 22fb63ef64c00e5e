"""The selective forwarding unit: the floor-holder's encoded audio and video go to every site, never transcoded.

One :class:`Sfu` holds rooms (one per meeting); a room holds peers (one per connected site, one peer connection
each, audio + video in both directions). The host hall always publishes; another site's media is forwarded only
while it holds the floor (:meth:`Sfu.grant_floor` / :meth:`Sfu.revoke_floor`), and the site is told so it can keep
its uplink idle otherwise. Everyone gets the floor-holder; the floor-holder itself gets the host hall.

Frames come out of aiortc receivers and go into aiortc senders through :mod:`meeting.media.passthrough`, so the
server never decodes or encodes. Each publisher track is a :class:`Source` mapping its RTP timestamps onto the
room's timeline (so a floor handover keeps every subscriber's timestamps continuous) and fanning one shared
``av.Packet`` per frame out to its subscribers. A subscriber's PLI/FIR goes upstream to the source, rate-limited.
A monitor reads RTCP receiver reports (loss) and REMB (bandwidth) per subscriber and switches a site whose link
cannot carry video to audio only, and back when it recovers.

Live control (:mod:`meeting.services.live`) has two small hooks here: :meth:`Sfu.set_muted` (a muted site's audio
frames are counted and dropped at its :class:`Source`, so a client that ignores the ``mute`` message is silent
anyway) and :meth:`Sfu.link` (per site: RTT, loss and byte counters for the console; the monitor keeps them).
A rehearsal needs no hook: a site without the floor is never routed, so what it publishes is only counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription
from aiortc.exceptions import InternalError, InvalidStateError
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.rtcrtptransceiver import RTCRtpTransceiver

from meeting.errors import MeetingError
from meeting.media.passthrough import (
    CLOCK_RATES,
    AvPacket,
    EncodedFrame,
    EncodedTrack,
    PassthroughPacker,
    make_packet,
    prime_sender,
    request_keyframe,
    resend_recent,
    tap_receiver,
)

logger = logging.getLogger(__name__)

Kind = Literal["audio", "video"]
KINDS: tuple[Kind, Kind] = ("audio", "video")
CODECS: dict[Kind, str] = {"audio": "opus", "video": "VP8"}
Notify = Callable[[dict[str, Any]], Coroutine[Any, Any, None]]


class MediaError(MeetingError):
    """A media-plane request that cannot be served (unknown room or peer, bad SDP, floor to an absent site)."""

    http_status = 409


def rtc_configuration() -> RTCConfiguration:
    """Every peer connection of the project: no ICE servers, so aiortc's public STUN default is never contacted."""
    return RTCConfiguration(iceServers=[])


def _prefer_room_codec(transceiver: RTCRtpTransceiver, kind: Kind) -> None:
    """Negotiate the room's codec (and its RTX) only: a forwarded stream cannot change codec on the way."""
    capabilities = RTCRtpSender.getCapabilities(kind).codecs
    transceiver.setCodecPreferences([c for c in capabilities if c.name.lower() in (CODECS[kind].lower(), "rtx")])


PUBLISHER_RCVBUF = 4 * 1024 * 1024
"""Receive buffer for a publisher's sockets: the one stream everybody gets must survive a busy event loop."""


def _enlarge_receive_buffers(pc: RTCPeerConnection, size: int) -> None:
    """Give a publisher's UDP sockets a deep receive buffer (SO_RCVBUFFORCE when allowed, else SO_RCVBUF).

    aioice asks for 256 KiB, which the kernel caps at ``net.core.rmem_max``; a keyframe burst arriving while the
    loop is busy sending to hundreds of subscribers can overflow that, and every subscriber loses the frame.
    Reaches into aioice's connection (best effort: logs and carries on if the layout differs).
    """
    for transceiver in pc.getTransceivers():
        try:
            protocols = transceiver.receiver.transport.transport.iceGatherer._connection._protocols
        except AttributeError:
            logger.debug("cannot reach the ICE sockets to enlarge their receive buffer")
            return
        for protocol in protocols:
            sock = protocol.transport.get_extra_info("socket") if protocol.transport is not None else None
            if sock is None:
                continue
            for option in (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF):
                if option is None:
                    continue
                try:
                    sock.setsockopt(socket.SOL_SOCKET, option, size)
                    break
                except OSError:
                    continue


@dataclass
class SfuConfig:
    """Tunables; the defaults are what the tests and the benchmark run with."""

    keyframe_min_interval_s: float = 0.25
    """At most one PLI upstream per source in this interval; later requests are coalesced, not lost."""
    monitor_interval_s: float = 1.0
    loss_video_off: float = 0.10
    """Fraction lost (from RTCP RR) at or above which a sample counts as bad."""
    loss_video_on: float = 0.03
    bad_samples: int = 2
    """Consecutive bad samples that switch a subscriber to audio only."""
    good_samples: int = 3
    """Consecutive good samples that bring video back."""
    min_video_bps: int = 0
    """REMB below this (0 = ignore bandwidth) counts as a bad sample."""
    report_stale_s: float = 4.0
    """No receiver report for this long while media flows counts as a bad sample (link dead)."""
    silent_drop_s: float = 4.0
    """No frame and no new receiver report from a connected peer for this long: the site counts as dropped
    (host console, attendance gap) although aiortc still says "connected"."""
    queue_frames: int = 64
    gop_cache_s: float = 2.0
    """A new subscriber starts from the publisher's last keyframe and the frames since, kept this long after
    the keyframe, instead of asking the publisher for a new one: when 129 communes join at a meeting's start, one
    keyframe serves everyone who connects in the next seconds, where a keyframe request per joiner (rate-limited to
    4/s) sent keyframes, several times larger than other frames, to every site already in. 0 turns it off."""


class RecordingSink(Protocol):
    """What a room records into (:class:`meeting.media.recorder.Recorder`): sees every published frame, encoded.

    ``timestamp`` is the frame's position on the room timeline in RTP ticks of its kind's clock (what subscribers
    get before the 32-bit mask, so only right modulo 2**32). The sink picks the floor-holder's frames itself; it
    must be cheap and never raise.
    """

    def on_frame(self, source: Source, frame: EncodedFrame, timestamp: int) -> None: ...

    def close(self) -> None: ...


class Source:
    """One publisher track: taps its receiver, maps timestamps onto the room timeline, fans frames out."""

    def __init__(self, room: Room, peer: Peer, kind: Kind, receiver: RTCRtpReceiver, config: SfuConfig) -> None:
        self.room = room
        self.peer = peer
        self.kind = kind
        self.receiver = receiver
        self._config = config
        self._clock = CLOCK_RATES[kind]
        self._offset: int | None = None
        self.subscribers: set[EncodedTrack] = set()
        self.frames = 0
        self.bytes = 0
        self.muted_frames = 0
        self.keyframes = 0
        self.keyframe_requests = 0
        self._last_pli = 0.0
        self._pli_pending: asyncio.TimerHandle | None = None
        self._gop: list[tuple[EncodedFrame, AvPacket]] = []
        """Video: the last keyframe and the frames after it while younger than ``gop_cache_s``, else empty."""
        self._gop_at = 0.0
        self.primed = 0
        self.tap = tap_receiver(receiver, kind, self.on_frame)

    def on_frame(self, frame: EncodedFrame) -> None:
        self.peer.alive_at = self.room.alive[self.peer.site_id] = time.monotonic()
        self.frames += 1
        self.bytes += len(frame.data)
        if frame.keyframe and self.kind == "video":
            self.keyframes += 1
        if self.kind == "audio" and self.peer.site_id in self.room.muted:
            self.muted_frames += 1
            return
        if self._offset is None:
            self._offset = self.room.ticks(self._clock) - frame.timestamp
        if self.room.recorder is not None:
            self.room.recorder.on_frame(self, frame, frame.timestamp + self._offset)
        if not self.subscribers and (self.kind != "video" or self._config.gop_cache_s <= 0):
            return  # nobody to send to, and no picture group to keep for the next joiner
        packet = make_packet(frame, (frame.timestamp + self._offset) & 0xFFFFFFFF)
        if self.kind == "video":
            self._cache(frame, packet)
        for track in self.subscribers:
            track.push(frame, packet)

    def _cache(self, frame: EncodedFrame, packet: AvPacket) -> None:
        now = time.monotonic()
        if frame.keyframe:
            self._gop = [(frame, packet)] if self._config.gop_cache_s > 0 else []
            self._gop_at = now
        elif self._gop:
            if now - self._gop_at > self._config.gop_cache_s or len(self._gop) >= self._config.queue_frames // 2:
                self._gop = []
            else:
                self._gop.append((frame, packet))

    def start(self, track: EncodedTrack) -> None:
        """Give a subscriber waiting for a picture a decodable start: the cached picture group, or else a keyframe
        request to the publisher (which refreshes the cache for whoever joins next)."""
        if self.fresh_keyframe() and track.prime(self._gop):
            self.primed += 1
            return
        self.request_keyframe()

    def fresh_keyframe(self) -> bool:
        """A keyframe younger than the cache age has been seen (cached, or on its way to the waiting tracks)."""
        return bool(self._gop) and time.monotonic() - self._gop_at <= self._config.gop_cache_s

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe; requests closer than the minimum interval are coalesced."""
        if self.kind != "video" or self._pli_pending is not None:
            return
        wait = self._last_pli + self._config.keyframe_min_interval_s - time.monotonic()
        if wait > 0:
            self._pli_pending = asyncio.get_running_loop().call_later(wait, self._send_pli)
        else:
            self._send_pli()

    def _send_pli(self) -> None:
        self._pli_pending = None
        self._last_pli = time.monotonic()
        if request_keyframe(self.receiver):
            self.keyframe_requests += 1

    def close(self) -> None:
        if self._pli_pending is not None:
            self._pli_pending.cancel()
            self._pli_pending = None
        self.subscribers.clear()


@dataclass
class Output:
    """What one peer receives of one kind: the track feeding its sender, the packer, the current source."""

    kind: Kind
    track: EncodedTrack
    sender: RTCRtpSender
    packer: PassthroughPacker
    source: Source | None = None


@dataclass
class Peer:
    """One site's connection to a room."""

    peer_id: str
    site_id: str
    is_host: bool
    pc: RTCPeerConnection
    notify: Notify | None
    sources: dict[str, Source] = field(default_factory=dict)
    outputs: dict[str, Output] = field(default_factory=dict)
    video_mode: Literal["full", "audio-only"] = "full"
    bad: int = 0
    good: int = 0
    last_loss: float = 0.0
    last_bitrate: int | None = None
    last_rtt_ms: float | None = None
    bytes_sent: int = 0
    joined_at: float = field(default_factory=time.monotonic)
    connected_at: float | None = None
    # Monotonic time of the last sign that the far end is alive: a frame it published or a NEW RTCP receiver
    # report about what we send it. A cut link leaves the peer "connected" in aiortc for a long time (no ICE
    # consent freshness), so this is how the console and attendance tell "dropped" from "connected".
    alive_at: float | None = None
    last_report_ts: float = 0.0


@dataclass
class Room:
    """One meeting's media: its peers, who holds the floor, and the shared RTP timeline."""

    room_id: str
    peers: dict[str, Peer] = field(default_factory=dict)
    floor: str | None = None
    """Site id holding the floor; None means the host hall speaks."""
    t0: float = field(default_factory=time.monotonic)
    recorder: RecordingSink | None = None
    """Set by :meth:`Sfu.attach_recorder` while the room is recorded."""
    muted: set[str] = field(default_factory=set)
    """Sites whose audio is not forwarded (shared with :attr:`Sfu.muted`, so it outlives the room)."""
    alive: dict[str, float] = field(default_factory=dict)
    """Monotonic time of each site's last sign of life here, across its peers: a peer that failed on a cut link
    is gone at once (ICMP unreachable), its site's silence is what tells the console it dropped."""

    def ticks(self, clock: int) -> int:
        return int((time.monotonic() - self.t0) * clock)

    def host(self) -> Peer | None:
        return next((p for p in self.peers.values() if p.is_host), None)

    def by_site(self, site_id: str) -> Peer | None:
        found = [p for p in self.peers.values() if p.site_id == site_id]
        return found[-1] if found else None

    def speaker(self) -> Peer | None:
        if self.floor is not None:
            return self.by_site(self.floor)
        return self.host()


class Sfu:
    """Rooms of forwarding peer connections; ``start()``/``stop()`` own the monitor task."""

    def __init__(self, config: SfuConfig | None = None) -> None:
        self.config = config or SfuConfig()
        self.rooms: dict[str, Room] = {}
        self.muted: dict[str, set[str]] = {}
        """Room id -> muted sites; kept while a room is empty, so a site that rejoins stays muted."""
        self.state: Literal["new", "running", "stopped"] = "new"
        self._monitor: asyncio.Task[None] | None = None
        self._notify_tasks: set[asyncio.Task[Any]] = set()

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def _set_state(self, state: Literal["new", "running", "stopped"]) -> None:
        logger.info("sfu state %s -> %s", self.state, state)
        self.state = state

    async def start(self) -> None:
        if self.state == "running":
            return
        self._monitor = asyncio.create_task(self._run_monitor(), name="sfu-monitor")
        self._set_state("running")

    async def stop(self) -> None:
        """Close every peer connection and wait for the monitor; safe to call twice."""
        if self.state != "running":
            self._set_state("stopped")
            return
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
            self._monitor = None
        for room_id in list(self.rooms):
            for peer_id in list(self.rooms[room_id].peers):
                await self.leave(room_id, peer_id)
        self.rooms.clear()
        for task in list(self._notify_tasks):
            task.cancel()
        await asyncio.gather(*self._notify_tasks, return_exceptions=True)
        self._set_state("stopped")

    # -- peers -------------------------------------------------------------------------------------------------
    def room(self, room_id: str) -> Room:
        room = self.rooms.get(room_id)
        if room is None:
            raise MediaError("Không có phòng họp {room} đang diễn ra", room=room_id)
        return room

    async def join(
        self,
        room_id: str,
        site_id: str,
        offer_sdp: str,
        *,
        is_host: bool = False,
        notify: Notify | None = None,
        peer_id: str | None = None,
    ) -> tuple[str, str]:
        """Accept a site's offer; returns ``(peer_id, answer_sdp)``. The offer may be sendrecv or recvonly."""
        if self.state != "running":
            raise MediaError("SFU chưa chạy")
        peer_id = peer_id or uuid.uuid4().hex[:12]
        pc = RTCPeerConnection(configuration=rtc_configuration())
        peer = Peer(peer_id=peer_id, site_id=site_id, is_host=is_host, pc=pc, notify=notify)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        except (ValueError, KeyError, IndexError, InvalidStateError, InternalError) as exc:
            await pc.close()
            raise MediaError("SDP offer không hợp lệ: {error}", field="sdp", error=str(exc)) from exc
        if not any(t.kind in KINDS for t in pc.getTransceivers()):
            await pc.close()
            raise MediaError("SDP offer không có luồng âm thanh hay hình ảnh nào", field="sdp")
        room = self.rooms.get(room_id) or self.rooms.setdefault(
            room_id, Room(room_id, muted=self.muted.setdefault(room_id, set())))
        for transceiver in pc.getTransceivers():
            kind: Kind = "video" if transceiver.kind == "video" else "audio"
            _prefer_room_codec(transceiver, kind)
            if transceiver.receiver.track is not None and kind not in peer.sources:
                peer.sources[kind] = Source(room, peer, kind, transceiver.receiver, self.config)
            if kind not in peer.outputs:
                on_gap = self._callback(self._gap, peer, kind)
                track = EncodedTrack(kind, maxsize=self.config.queue_frames, on_gap=on_gap)
                sender = pc.addTrack(track)
                packer = prime_sender(sender, CODECS[kind], self._callback(self.keyframe_wanted, peer, kind))
                peer.outputs[kind] = Output(kind=kind, track=track, sender=sender, packer=packer)

        self._watch(room_id, peer)
        answer = await pc.createAnswer()
        await pc.setLocalDescription(answer)
        if peer.sources:
            _enlarge_receive_buffers(pc, PUBLISHER_RCVBUF)
        room.peers[peer_id] = peer
        logger.info("room %s: site %s joined as peer %s%s", room_id, site_id, peer_id, " (host)" if is_host else "")
        self._route(room)
        return peer_id, pc.localDescription.sdp

    # -- cascade (one SFU feeding another: how a host spreads subscribers over worker processes) ----------------
    async def relay_offer(self, room_id: str, relay_id: str) -> tuple[str, str]:
        """Offer a connection that carries this room's speaker to another SFU; returns (peer, sdp).

        It is sendrecv: when a site on the other SFU gets the floor there, its media comes back up this connection
        and the floor here goes to this relay peer (``grant_floor(room, peer)``, see meeting.media.shards).

        The other SFU passes the offer to its own :meth:`join` with ``is_host=True``: there the relay is the
        publisher its subscribers get. Keyframe requests travel back up through the relay; NACK runs per leg.
        """
        room = self.room(room_id)
        peer_id = f"relay-{relay_id}"
        pc = RTCPeerConnection(configuration=rtc_configuration())
        peer = Peer(peer_id=peer_id, site_id=peer_id, is_host=False, pc=pc, notify=None)
        for kind in KINDS:
            track = EncodedTrack(kind, maxsize=self.config.queue_frames, on_gap=self._callback(self._gap, peer, kind))
            # sendrecv: when a site on the other SFU holds the floor, its media comes back up this same connection
            transceiver = pc.addTransceiver(track, direction="sendrecv")
            _prefer_room_codec(transceiver, kind)
            packer = prime_sender(transceiver.sender, CODECS[kind], self._callback(self.keyframe_wanted, peer, kind))
            peer.outputs[kind] = Output(kind=kind, track=track, sender=transceiver.sender, packer=packer)
        self._watch(room_id, peer)
        await pc.setLocalDescription(await pc.createOffer())
        room.peers[peer_id] = peer
        logger.info("room %s: relay %s offered", room_id, peer_id)
        self._route(room)
        return peer_id, pc.localDescription.sdp

    async def relay_answer(self, room_id: str, peer_id: str, answer_sdp: str) -> None:
        peer = self.room(room_id).peers.get(peer_id)
        if peer is None:
            raise MediaError("Không có kết nối chuyển tiếp {peer}", peer=peer_id)
        await peer.pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))
        room = self.room(room_id)
        for transceiver in peer.pc.getTransceivers():  # the other SFU's floor holder, if it ever has one
            kind: Kind = "video" if transceiver.kind == "video" else "audio"
            if transceiver.receiver.track is not None and kind not in peer.sources:
                peer.sources[kind] = Source(room, peer, kind, transceiver.receiver, self.config)
        if peer.sources:
            _enlarge_receive_buffers(peer.pc, PUBLISHER_RCVBUF)

    def open_room(self, room_id: str) -> Room:
        """The room, created empty if needed: a worker's relay may come before the host hall (meeting.media.shards)."""
        return self.rooms.get(room_id) or self.rooms.setdefault(
            room_id, Room(room_id, muted=self.muted.setdefault(room_id, set())))

    def _watch(self, room_id: str, peer: Peer) -> None:
        pc = peer.pc

        @pc.on("connectionstatechange")
        async def _on_state() -> None:
            logger.info("room %s peer %s (site %s) connection %s", room_id, peer.peer_id, peer.site_id,
                        pc.connectionState)
            if pc.connectionState == "connected" and peer.connected_at is None:
                peer.connected_at = peer.alive_at = time.monotonic()
                if room_id in self.rooms:
                    self.rooms[room_id].alive[peer.site_id] = peer.alive_at
                self._fresh_start(peer)
            if pc.connectionState in ("failed", "closed"):
                await self.leave(room_id, peer.peer_id)

    async def leave(self, room_id: str, peer_id: str) -> None:
        room = self.rooms.get(room_id)
        if room is None:
            return
        peer = room.peers.pop(peer_id, None)
        if peer is None:
            return
        for source in peer.sources.values():
            source.close()
        for out in peer.outputs.values():
            if out.source is not None:
                out.source.subscribers.discard(out.track)
        if room.floor == peer.site_id and room.by_site(peer.site_id) is None:
            room.floor = None
            logger.info("room %s: floor holder %s left, floor back to the host", room_id, peer.site_id)
        await peer.pc.close()
        logger.info("room %s: peer %s (site %s) left", room_id, peer_id, peer.site_id)
        if not room.peers:
            self.detach_recorder(room_id)
            self.rooms.pop(room_id, None)
        else:
            self._route(room)

    # -- recording (the hook; the recorder itself is meeting.media.recorder) ----------------------------------
    def attach_recorder(self, room_id: str, sink: RecordingSink) -> None:
        """Record the room's floor stream into ``sink`` from now on (one recorder per room)."""
        room = self.room(room_id)
        if room.recorder is not None:
            raise MediaError("Phòng họp {room} đang được ghi hình", room=room_id)
        room.recorder = sink
        logger.info("room %s: recording attached", room_id)

    def detach_recorder(self, room_id: str) -> RecordingSink | None:
        """Stop feeding the room's recorder and close it; returns it (None when the room was not recorded)."""
        room = self.rooms.get(room_id)
        sink = room.recorder if room is not None else None
        if room is not None and sink is not None:
            room.recorder = None
            sink.close()
            logger.info("room %s: recording detached", room_id)
        return sink

    # -- floor -------------------------------------------------------------------------------------------------
    def grant_floor(self, room_id: str, site_id: str) -> None:
        room = self.room(room_id)
        peer = room.by_site(site_id)
        if peer is None:
            raise MediaError("Điểm cầu {site} chưa kết nối vào phòng {room}", site=site_id, room=room_id)
        previous = room.floor
        room.floor = None if peer.is_host else site_id
        logger.info("room %s: floor %s -> %s", room_id, previous or "host", room.floor or "host")
        if previous and previous != room.floor:
            self._tell_site(room, previous, {"type": "floor", "granted": False, "holder": room.floor})
        if room.floor:
            self._tell_site(room, room.floor, {"type": "floor", "granted": True, "holder": room.floor})
        self._route(room)

    def revoke_floor(self, room_id: str) -> None:
        room = self.room(room_id)
        previous = room.floor
        room.floor = None
        logger.info("room %s: floor %s -> host", room_id, previous or "host")
        if previous:
            self._tell_site(room, previous, {"type": "floor", "granted": False, "holder": None})
        self._route(room)

    # -- live control (meeting.services.live) ----------------------------------------------------------------------
    def set_muted(self, room_id: str, site_id: str, muted: bool) -> None:
        """Stop (or resume) forwarding ``site_id``'s audio in this room, whether or not it is connected now."""
        sites = self.muted.setdefault(room_id, set())
        if muted == (site_id in sites):
            return
        (sites.add if muted else sites.discard)(site_id)
        logger.info("room %s: site %s audio %s", room_id, site_id, "muted" if muted else "unmuted")

    def link(self, room_id: str, site_id: str) -> dict[str, Any] | None:
        """The SFU's view of one site's link, from what the monitor last read (no stats call here)."""
        room = self.rooms.get(room_id)
        peer = room.by_site(site_id) if room is not None else None
        if peer is None:
            return None
        return {
            "state": peer.pc.connectionState,
            "connected_at": peer.connected_at,
            "dropped_s": self.dropped_for(room_id, site_id),
            "rtt_ms": peer.last_rtt_ms,
            "loss": peer.last_loss,
            "bytes_sent": peer.bytes_sent,
            "bytes_received": sum(s.bytes for s in peer.sources.values()),
            "published": {k: s.frames for k, s in peer.sources.items()},
        }

    def dropped_for(self, room_id: str, site_id: str) -> float | None:
        """Seconds a site has been gone, or None while it is fine (or has not been here since its socket came).

        Gone means: its connected peer went quiet past ``silent_drop_s`` although it should talk, or its peer
        failed/vanished and the site has shown no life for that long. aiortc alone cannot tell: a cut link keeps a
        peer "connected" for ~30 s, or fails it at once when a router answers with ICMP unreachable.
        """
        room = self.rooms.get(room_id)
        if room is None:
            return None
        now = time.monotonic()
        peer = room.by_site(site_id)
        if peer is not None and peer.pc.connectionState == "connected":
            return now - peer.alive_at if self._silent(room, peer) and peer.alive_at is not None else None
        last = room.alive.get(site_id)
        if last is None or now - last <= self.config.silent_drop_s:
            return None
        return now - last

    def forget_life(self, room_id: str, site_id: str) -> None:
        """A new signaling session for the site: it starts as connecting, not as the old session's drop."""
        room = self.rooms.get(room_id)
        if room is not None:
            room.alive.pop(site_id, None)

    def _silent(self, room: Room, peer: Peer) -> bool:
        """Quiet past the drop threshold although it should talk: it publishes, or it gets media (and so owes
        receiver reports). A site in a room where nobody sends yet is quiet by right, not dropped."""
        if peer.alive_at is None or time.monotonic() - peer.alive_at <= self.config.silent_drop_s:
            return False
        publishes = peer.is_host or room.floor == peer.site_id
        # Receiver reports count only on a peer that has sent some (not every client reports on every leg).
        reports = peer.last_report_ts > 0 and any(
            o.source is not None and o.track.forwarded > 0 for o in peer.outputs.values())
        return publishes or reports

    # -- forwarding --------------------------------------------------------------------------------------------
    def _route(self, room: Room) -> None:
        """Point every peer's outputs at the right source: the speaker, or the host for the speaker itself."""
        speaker = room.speaker()
        host = room.host()
        now = time.monotonic()
        for peer in room.peers.values():
            if peer.alive_at is not None:  # who must talk changes: everyone gets a fresh drop grace period
                peer.alive_at = now
            origin = speaker if peer is not speaker else (host if host is not speaker else None)
            for kind, out in peer.outputs.items():
                source = origin.sources.get(kind) if origin is not None else None
                if source is out.source:
                    continue
                if out.source is not None:
                    out.source.subscribers.discard(out.track)
                out.source = source
                if source is not None:
                    source.subscribers.add(out.track)
                    if kind == "video":
                        out.track.wait_for_keyframe()
                        if peer.pc.connectionState == "connected":
                            source.start(out.track)
                        elif not source.fresh_keyframe():
                            # not connected yet: it starts at connect (_fresh_start); ask now only when no recent
                            # keyframe is cached, so the one asked for is there by then
                            source.request_keyframe()

    @staticmethod
    def _callback(method: Callable[[Peer, Kind], None], peer: Peer, kind: Kind) -> Callable[[], None]:
        return lambda: method(peer, kind)

    def keyframe_wanted(self, peer: Peer, kind: Kind) -> None:
        """A subscriber sent PLI/FIR: forward it to whoever it is watching (rate-limited there)."""
        out = peer.outputs.get(kind)
        if out is not None and out.source is not None:
            out.source.request_keyframe()

    def _gap(self, peer: Peer, kind: Kind) -> None:
        logger.debug("peer %s: %s queue overflow, waiting for a keyframe", peer.peer_id, kind)
        self.keyframe_wanted(peer, kind)

    def _fresh_start(self, peer: Peer) -> None:
        """On connect, make sure the subscriber starts at a keyframe.

        The keyframe requested at join time is usually queued already (ICE + DTLS take longer than a PLI round
        trip), and sending it at once is the fastest first picture; if it has not arrived, ask again now.
        """
        out = peer.outputs.get("video")
        if out is not None and out.source is not None and out.track.waiting_keyframe:
            out.source.start(out.track)

    def _set_video_mode(self, room: Room, peer: Peer, mode: Literal["full", "audio-only"], reason: str) -> None:
        if peer.video_mode == mode:
            return
        logger.info("room %s: site %s video %s -> %s (%s)", room.room_id, peer.site_id, peer.video_mode, mode, reason)
        peer.video_mode = mode
        out = peer.outputs.get("video")
        if out is not None:
            out.track.paused = mode == "audio-only"
            if mode == "full":
                out.track.wait_for_keyframe()
                if out.source is not None:
                    out.source.request_keyframe()
                self._spawn(resend_recent(out.sender))
        self._send(peer, {"type": "video", "mode": mode, "reason": reason})

    def _tell_site(self, room: Room, site_id: str, message: dict[str, Any]) -> None:
        peer = room.by_site(site_id)
        if peer is not None:
            self._send(peer, message)

    def _send(self, peer: Peer, message: dict[str, Any]) -> None:
        if peer.notify is not None:
            self._spawn(peer.notify(message))

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run a side task (a notification, a replay) that ``stop()`` will cancel and wait for."""
        task = asyncio.get_running_loop().create_task(coro)
        self._notify_tasks.add(task)
        task.add_done_callback(self._notify_tasks.discard)

    # -- link monitor ------------------------------------------------------------------------------------------
    async def _run_monitor(self) -> None:
        while True:
            await asyncio.sleep(self.config.monitor_interval_s)
            for room in list(self.rooms.values()):
                for peer in list(room.peers.values()):
                    self._retry_keyframe(peer)
                    try:
                        await self._check_link(room, peer)
                    except Exception:  # one peer's stats never stop the others
                        logger.exception("room %s: link check of peer %s failed", room.room_id, peer.peer_id)

    @staticmethod
    def _retry_keyframe(peer: Peer) -> None:
        """A subscriber still waiting for a keyframe asks again: a PLI or the keyframe itself may have been lost."""
        out = peer.outputs.get("video")
        if out is None or out.source is None or out.track.paused or not out.track.waiting_keyframe:
            return
        if peer.pc.connectionState == "connected":
            out.source.start(out.track)

    async def _check_link(self, room: Room, peer: Peer) -> None:
        if peer.pc.connectionState != "connected":
            return
        loss = 0.0
        stale = False
        now = time.time()
        sent = 0
        rtts: list[float] = []
        for kind, out in peer.outputs.items():
            if out.source is None or out.track.forwarded == 0:
                continue
            report = await out.sender.getStats()
            sent += sum(int(getattr(s, "bytesSent", 0) or 0) for s in report.values()
                        if getattr(s, "type", "") == "outbound-rtp")
            remote = [s for s in report.values() if getattr(s, "type", "") == "remote-inbound-rtp"]
            newest = max((s.timestamp.timestamp() for s in remote), default=0.0)
            if newest > peer.last_report_ts:  # a receiver report we had not seen: the site is alive
                peer.last_report_ts = newest
                peer.alive_at = room.alive[peer.site_id] = time.monotonic()
            rtts += [float(s.roundTripTime) * 1000 for s in remote if getattr(s, "roundTripTime", None) is not None]
            if kind == "video" and peer.video_mode == "audio-only":
                continue
            if not remote:
                since = time.monotonic() - (peer.connected_at or time.monotonic())
                stale = since > self.config.report_stale_s
                continue
            stat = remote[-1]
            loss = max(loss, float(getattr(stat, "fractionLost", 0) or 0) / 256.0)
            if now - stat.timestamp.timestamp() > self.config.report_stale_s:
                stale = True
        peer.last_loss = loss
        peer.bytes_sent = max(peer.bytes_sent, sent)
        if rtts:
            peer.last_rtt_ms = max(rtts)
        video = peer.outputs.get("video")
        peer.last_bitrate = video.packer.target_bitrate if video is not None else None
        starved = (
            self.config.min_video_bps > 0
            and peer.last_bitrate is not None
            and peer.last_bitrate < self.config.min_video_bps
        )
        bad = stale or loss >= self.config.loss_video_off or starved
        good = not stale and loss < self.config.loss_video_on and not starved
        peer.bad = peer.bad + 1 if bad else 0
        peer.good = peer.good + 1 if good else 0
        if peer.video_mode == "full" and peer.bad >= self.config.bad_samples:
            why = "no receiver report" if stale else ("low bandwidth" if starved else f"loss {loss:.0%}")
            self._set_video_mode(room, peer, "audio-only", why)
        elif peer.video_mode == "audio-only" and peer.good >= self.config.good_samples:
            self._set_video_mode(room, peer, "full", f"loss {loss:.0%}")

    # -- observability -----------------------------------------------------------------------------------------
    def stats(self, room_id: str) -> dict[str, Any]:
        room = self.room(room_id)
        return {
            "room": room_id,
            "floor": room.floor,
            "peers": [
                {
                    "peer": p.peer_id,
                    "site": p.site_id,
                    "host": p.is_host,
                    "state": p.pc.connectionState,
                    "video_mode": p.video_mode,
                    "loss": round(p.last_loss, 3),
                    "remb_bps": p.last_bitrate,
                    "published": {k: s.frames for k, s in p.sources.items()},
                    "keyframe_requests": {k: s.keyframe_requests for k, s in p.sources.items()},
                    "started_from_cache": {k: s.primed for k, s in p.sources.items()},
                    "forwarded": {k: o.track.forwarded for k, o in p.outputs.items()},
                    "dropped": {k: o.track.dropped for k, o in p.outputs.items()},
                    "outputs": {
                        k: {"live": o.track.readyState == "live", "waiting_keyframe": o.track.waiting_keyframe,
                            "paused": o.track.paused, "queued": o.track.queued}
                        for k, o in p.outputs.items()
                    },
                }
                for p in room.peers.values()
            ],
        }
