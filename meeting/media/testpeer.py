"""Real aiortc peers that load and check the SFU from another process: publisher, site, light subscriber, probe.

The tests and ``bench/sfu.py`` start this module as a subprocess (inside their network namespace) and talk to it
with JSON lines: the peer prints ``{"peer": i, "msg": {...}}`` (a signaling message for the SFU) and
``{"peer": i, "event": ...}``; it reads ``{"peer": i, "msg": {...}}`` (the SFU's reply) and ``{"cmd": ...}``.

Roles:
* ``publisher`` — the host hall: synthetic VP8 + Opus (really encoded by aiortc, here in the client), always on.
* ``replay`` — the host hall for benchmarks: a 10 s loop of VP8 (one keyframe) + Opus encoded once at start and
  sent through the pass-through path, so the load generator spends its CPU on subscribers; a PLI restarts the
  loop at its keyframe.
* ``site`` — a commune that sends only while it holds the floor (its uplink stays idle otherwise) and decodes
  what it receives.
* ``light`` — recvonly; after ICE + DTLS it no longer decrypts anything, it only counts datagrams from their
  clear RTP headers (video frames = marker bits), so hundreds fit on the load generator.
* ``probe`` — recvonly and really decodes: first-frame time, decoded fps, and the mean luma of the pictures
  (each publisher paints its own luma, so a probe tells whose video it sees).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import json
import logging
import math
import sys
import time
from typing import Any

import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.codecs import vpx
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame, VideoFrame

from meeting.media.sfu import rtc_configuration

logger = logging.getLogger(__name__)

_OPUS_PT_NAMES = ("opus",)


def _out(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class SyntheticVideo(MediaStreamTrack):
    """A moving test picture of one luma level, produced in real time; paused while ``live`` is clear."""

    kind = "video"

    def __init__(self, width: int, height: int, fps: int, luma: int, live: asyncio.Event) -> None:
        super().__init__()
        self._fps = fps
        self._live = live
        rng = np.random.default_rng(luma)
        self._frames = []
        for i in range(fps):
            y = np.full((height, width), luma, dtype=np.uint8)
            noise = rng.integers(0, 24, size=(height, width), dtype=np.uint8)
            y = np.clip(y.astype(np.int16) + noise - 12, 0, 255).astype(np.uint8)
            x0 = (i * width // fps) % width
            y[:, x0 : x0 + width // 16] = 255 - luma
            uv = np.full((height // 2, width), 128, dtype=np.uint8)
            self._frames.append(VideoFrame.from_ndarray(np.vstack([y, uv]), format="yuv420p"))
        self._start: float | None = None
        self._n = 0

    async def recv(self) -> VideoFrame:  # type: ignore[override]
        if self.readyState != "live":
            raise MediaStreamError
        await self._live.wait()
        if self._start is None:
            self._start = time.monotonic()
        self._n += 1
        wait = self._start + self._n / self._fps - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        else:
            self._start -= wait  # fell behind (paused or CPU starved): do not burst to catch up
        frame = self._frames[self._n % len(self._frames)]
        frame.pts = int((time.monotonic() - (self._start or 0)) * 90000)
        frame.time_base = fractions.Fraction(1, 90000)
        return frame


class SyntheticAudio(MediaStreamTrack):
    """A 440 Hz tone in 20 ms frames at 48 kHz, produced in real time; paused while ``live`` is clear."""

    kind = "audio"

    def __init__(self, live: asyncio.Event) -> None:
        super().__init__()
        self._live = live
        t = np.arange(960) / 48000.0
        self._pcm = (np.sin(2 * math.pi * 440 * t) * 3000).astype(np.int16).reshape(1, -1)
        self._start: float | None = None
        self._n = 0

    async def recv(self) -> AudioFrame:  # type: ignore[override]
        if self.readyState != "live":
            raise MediaStreamError
        await self._live.wait()
        if self._start is None:
            self._start = time.monotonic()
        self._n += 1
        wait = self._start + self._n * 0.02 - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        else:
            self._start -= wait
        frame = AudioFrame.from_ndarray(self._pcm, format="s16", layout="mono")
        frame.sample_rate = 48000
        frame.pts = self._n * 960
        frame.time_base = fractions.Fraction(1, 48000)
        return frame


def _pre_encode_video(width: int, height: int, fps: int, seconds: int, bitrate: int, luma: int) -> list[bytes]:
    """A loop of really encoded VP8 (libvpx): one keyframe at the start, deltas after it."""
    import av

    ctx = av.CodecContext.create("libvpx", "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
    ctx.time_base = fractions.Fraction(1, fps)
    ctx.framerate = fractions.Fraction(fps, 1)
    ctx.bit_rate = bitrate
    ctx.gop_size = fps * seconds + 10
    ctx.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    live = asyncio.Event()
    source = SyntheticVideo(width, height, fps, luma, live)
    out: list[bytes] = []
    for i in range(fps * seconds):
        frame = source._frames[i % len(source._frames)]
        frame.pts = i
        out.extend(bytes(p) for p in ctx.encode(frame))
    out.extend(bytes(p) for p in ctx.encode(None))
    return out


def _pre_encode_audio(packets: int) -> list[bytes]:
    """20 ms Opus packets of a tone (libopus)."""
    import av

    ctx = av.CodecContext.create("libopus", "w")
    ctx.sample_rate, ctx.layout, ctx.format = 48000, "mono", "s16"
    ctx.bit_rate = 32000
    ctx.time_base = fractions.Fraction(1, 48000)
    t = np.arange(960) / 48000.0
    pcm = (np.sin(2 * math.pi * 440 * t) * 3000).astype(np.int16).reshape(1, -1)
    out: list[bytes] = []
    for i in range(packets):
        frame = AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate, frame.pts = 48000, i * 960
        out.extend(bytes(p) for p in ctx.encode(frame))
    return out


class _Replay:
    """Publishes a pre-encoded VP8 + Opus loop through the pass-through path: a publisher that costs ~no CPU.

    A PLI from the SFU restarts the loop at its keyframe, so keyframe forwarding is exercised as with a live
    encoder (whose GOP is as long as the loop).
    """

    def __init__(self, video: list[bytes], audio: list[bytes], fps: int) -> None:
        from meeting.media.passthrough import EncodedTrack

        self.video, self.audio, self.fps = video, audio, fps
        self.vtrack, self.atrack = EncodedTrack("video", maxsize=256), EncodedTrack("audio", maxsize=256)
        self._restart = False
        self.keyframe_requests = 0
        self.sent = [0, 0]
        """Video frames and audio packets handed to the senders so far."""

    def keyframe(self) -> None:
        self.keyframe_requests += 1
        self._restart = True

    async def run(self) -> None:
        from meeting.media.passthrough import EncodedFrame, is_keyframe, make_packet

        start = time.monotonic()
        vi = ai = 0
        vpos = 0
        self.sent = [0, 0]
        next_v = next_a = 0.0
        while True:
            now = time.monotonic() - start
            # a starved process sends late, never in bursts (a camera does not catch up either)
            next_v = max(next_v, now - 1 / self.fps)
            next_a = max(next_a, now - 0.02)
            if now >= next_v:
                if self._restart:
                    vpos, self._restart = 0, False
                data = self.video[vpos % len(self.video)]
                f = EncodedFrame("video", "VP8", data, vi * 90000 // self.fps, is_keyframe("VP8", data), 0.0)
                self.vtrack.push(f, make_packet(f, f.timestamp))
                vi, vpos, next_v = vi + 1, vpos + 1, next_v + 1 / self.fps
                self.sent[0] = vi
            if now >= next_a:
                data = self.audio[ai % len(self.audio)]
                f = EncodedFrame("audio", "opus", data, ai * 960, True, 0.0)
                self.atrack.push(f, make_packet(f, f.timestamp))
                ai, next_a = ai + 1, next_a + 0.02
                self.sent[1] = ai
            await asyncio.sleep(max(0.0, min(next_v, next_a) - (time.monotonic() - start)))


class _DatagramCounter:
    """Replaces a DTLS transport's SRTP unprotect after the handshake: counts RTP from clear headers, drops it."""

    def __init__(self, real: Any, audio_pts: set[int], video_pts: set[int]) -> None:
        self._real = real
        self._audio_pts = audio_pts
        self._video_pts = video_pts
        self.audio = 0
        self.video_packets = 0
        self.video_frames = 0
        self.first_at: float | None = None
        self.streams: dict[int, list[int]] = {}
        """ssrc -> [base_seq, extended max seq, received, expected_prior, received_prior, is_video]"""

    def unprotect(self, data: bytes) -> bytes:
        import pylibsrtp

        self.count(data)
        raise pylibsrtp.Error("counted")  # aiortc drops it quietly: no decrypt, no depayload

    def count(self, data: bytes) -> None:
        """Count one SRTP packet from its clear RTP header."""
        ssrc = int.from_bytes(data[8:12], "big")
        seq = int.from_bytes(data[2:4], "big")
        st = self.streams.get(ssrc)
        if st is None:
            self.streams[ssrc] = [seq, seq, 1, 0, 0, int((data[1] & 0x7F) in self._video_pts)]
        else:
            ext = st[1] + ((seq - st[1]) & 0xFFFF) if ((seq - st[1]) & 0xFFFF) < 0x8000 else st[1]
            st[1] = ext
            st[2] += 1
        pt = data[1] & 0x7F
        if pt in self._video_pts:
            self.video_packets += 1
            if data[1] & 0x80:
                self.video_frames += 1
                if self.first_at is None:
                    self.first_at = time.monotonic()
        elif pt in self._audio_pts:
            self.audio += 1

    def unprotect_rtcp(self, data: bytes) -> bytes:
        return bytes(self._real.unprotect_rtcp(data))

    def receiver_reports(self) -> list[Any]:
        """RTCP receiver report blocks built from the clear headers, as a real receiver would send them."""
        from aiortc.rtp import RtcpReceiverInfo

        blocks = []
        for ssrc, st in self.streams.items():
            expected = st[1] - st[0] + 1
            exp_int, rec_int = expected - st[3], st[2] - st[4]
            st[3], st[4] = expected, st[2]
            lost_int = exp_int - rec_int
            fraction = 0 if exp_int <= 0 or lost_int <= 0 else min(255, (lost_int << 8) // exp_int)
            blocks.append(RtcpReceiverInfo(ssrc=ssrc, fraction_lost=fraction, packets_lost=max(0, expected - st[2]),
                                           highest_sequence=st[1] & 0xFFFFFFFF, jitter=0, lsr=0, dlsr=0))
        return blocks


class JanusSession:
    """Janus Gateway HTTP API (VideoRoom) for the benchmark anchor: one session, one long-poll, many handles."""

    def __init__(self, url: str) -> None:
        import httpx

        self.url = url.rstrip("/")
        self.client = httpx.AsyncClient(timeout=90)
        self.session = 0
        self.events: dict[int, asyncio.Queue[dict[str, Any]]] = {}
        self._poll: asyncio.Task[None] | None = None
        self._tx = 0

    def _txn(self) -> str:
        self._tx += 1
        return f"t{self._tx}"

    async def _post(self, path: str, doc: dict[str, Any]) -> dict[str, Any]:
        reply = await self.client.post(self.url + path, json={**doc, "transaction": self._txn()})
        data: dict[str, Any] = reply.json()
        if data.get("janus") == "error":
            raise RuntimeError(f"janus: {data}")
        return data

    async def create(self) -> None:
        self.session = int((await self._post("", {"janus": "create"}))["data"]["id"])
        self._poll = asyncio.ensure_future(self._run_poll())

    async def attach(self) -> int:
        data = await self._post(f"/{self.session}", {"janus": "attach", "plugin": "janus.plugin.videoroom"})
        handle = int(data["data"]["id"])
        self.events[handle] = asyncio.Queue()
        return handle

    async def message(self, handle: int, body: dict[str, Any], jsep: dict[str, Any] | None = None) -> None:
        doc: dict[str, Any] = {"janus": "message", "body": body}
        if jsep is not None:
            doc["jsep"] = jsep
        await self._post(f"/{self.session}/{handle}", doc)

    async def jsep_event(self, handle: int, timeout: float = 30) -> dict[str, Any]:
        while True:
            event = await asyncio.wait_for(self.events[handle].get(), timeout)
            if "jsep" in event:
                return event

    async def _run_poll(self) -> None:
        while True:
            try:
                reply = await self.client.get(f"{self.url}/{self.session}", params={"maxev": 20})
            except Exception:  # the long poll also keeps the session alive: retry
                await asyncio.sleep(0.5)
                continue
            data = reply.json()
            for event in data if isinstance(data, list) else [data]:
                sender = event.get("sender")
                if sender in self.events:
                    await self.events[sender].put(event)

    async def close(self) -> None:
        if self._poll is not None:
            self._poll.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poll
        with contextlib.suppress(Exception):
            await self._post(f"/{self.session}", {"janus": "destroy"})
        await self.client.aclose()


class Peer:
    """One client peer connection and what it measured."""

    def __init__(self, index: int, role: str, args: argparse.Namespace) -> None:
        self.index = index
        self.role = role
        self.args = args
        self.pc = RTCPeerConnection(configuration=rtc_configuration())
        self.live = asyncio.Event()
        self.t_offer = 0.0
        self.t_connected: float | None = None
        self.first_decoded: float | None = None
        self.decoded: dict[str, int] = {"audio": 0, "video": 0}
        self.luma: list[tuple[float, float]] = []
        self.counters: list[_DatagramCounter] = []
        self.video_mode = "full"
        self.floor = False
        self.tasks: list[asyncio.Task[None]] = []
        self.answered = asyncio.Event()
        self.replay: _Replay | None = None
        self.janus: JanusSession | None = None

    async def start(self) -> None:
        a = self.args
        if self.role == "replay":
            from meeting.media.passthrough import prime_sender

            self.replay = _Replay(
                _pre_encode_video(a.width, a.height, a.fps, 10, a.bitrate or 800_000, a.luma),
                _pre_encode_audio(50), a.fps,
            )
            prime_sender(self.pc.addTrack(self.replay.vtrack), "VP8", self.replay.keyframe)
            prime_sender(self.pc.addTrack(self.replay.atrack), "opus", lambda: None)
            self.tasks.append(asyncio.ensure_future(self.replay.run()))
        elif self.role in ("publisher", "site"):
            if self.role == "publisher":
                self.live.set()
            self.pc.addTrack(SyntheticVideo(a.width, a.height, a.fps, a.luma, self.live))
            self.pc.addTrack(SyntheticAudio(self.live))
        elif a.janus is None:
            self.pc.addTransceiver("audio", direction="recvonly")
            self.pc.addTransceiver("video", direction="recvonly")

        @self.pc.on("track")
        def _on_track(track: MediaStreamTrack) -> None:
            if self.role in ("probe", "site"):
                self.tasks.append(asyncio.ensure_future(self._consume(track)))

        @self.pc.on("connectionstatechange")
        async def _on_state() -> None:
            if self.pc.connectionState == "connected" and self.t_connected is None:
                self.t_connected = time.monotonic()
                _out({"peer": self.index, "event": "connected", "after_s": self.t_connected - self.t_offer})
                if self.role == "light":
                    self._install_counter()
            elif self.pc.connectionState == "failed":
                _out({"peer": self.index, "event": "failed"})

        if self.janus is not None:
            await self._start_janus(self.janus)
            return
        offer = await self.pc.createOffer()
        await self.pc.setLocalDescription(offer)
        self.t_offer = time.monotonic()
        _out({"peer": self.index, "msg": {"type": "offer", "sdp": self.pc.localDescription.sdp}})

    async def _start_janus(self, janus: JanusSession) -> None:
        """Publish into, or subscribe to, Janus VideoRoom room 1234 (the benchmark anchor)."""
        handle = await janus.attach()
        self.t_offer = time.monotonic()
        if self.role in ("publisher", "replay"):
            await self.pc.setLocalDescription(await self.pc.createOffer())
            jsep = {"type": "offer", "sdp": self.pc.localDescription.sdp}
            body = {"request": "joinandconfigure", "room": 1234, "ptype": "publisher", "display": "host"}
            await janus.message(handle, body, jsep)
            event = await janus.jsep_event(handle)
            await self.pc.setRemoteDescription(RTCSessionDescription(**event["jsep"]))
            feed = event["plugindata"]["data"].get("id")
            _out({"peer": self.index, "event": "janus-feed", "feed": feed})
            return
        await janus.message(handle, {"request": "join", "room": 1234, "ptype": "subscriber", "feed": self.args.feed})
        event = await janus.jsep_event(handle)
        await self.pc.setRemoteDescription(RTCSessionDescription(**event["jsep"]))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        answer = {"type": "answer", "sdp": self.pc.localDescription.sdp}
        await janus.message(handle, {"request": "start", "room": 1234}, answer)

    def _install_counter(self) -> None:
        audio_pts: set[int] = set()
        video_pts: set[int] = set()
        for line in self.pc.remoteDescription.sdp.splitlines():
            if line.startswith("m="):
                kind, *_, fmts = line[2:].split(" ", 3)
                target = video_pts if kind == "video" else audio_pts
                target.update(int(pt) for pt in fmts.split() if pt.isdigit())
        transports = {id(t.receiver.transport): t.receiver.transport for t in self.pc.getTransceivers()}
        for dtls in transports.values():
            counter = _DatagramCounter(dtls._rx_srtp, audio_pts, video_pts)
            dtls._rx_srtp = counter  # type: ignore[assignment]
            self.counters.append(counter)
            self.tasks.append(asyncio.ensure_future(self._send_reports(dtls, counter)))

    async def _send_reports(self, dtls: Any, counter: _DatagramCounter) -> None:
        """Send RTCP RR about once a second (aiortc's receivers would, but they no longer see the packets)."""
        from aiortc.rtp import RtcpRrPacket

        rtcp_ssrc = 0x4C540000 + self.index
        while True:
            await asyncio.sleep(0.5 + (self.index % 10) / 10)
            blocks = counter.receiver_reports()
            if blocks:
                with contextlib.suppress(ConnectionError):
                    await dtls._send_rtp(bytes(RtcpRrPacket(ssrc=rtcp_ssrc, reports=blocks)))

    async def _consume(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                self.decoded[track.kind] += 1
                if track.kind == "video":
                    now = time.monotonic()
                    if self.first_decoded is None:
                        self.first_decoded = now
                    if self.decoded["video"] % 5 == 1 and isinstance(frame, VideoFrame):
                        plane = frame.to_ndarray(format="gray")
                        self.luma.append((now, float(np.median(plane))))

    async def on_message(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "answer":
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=msg["sdp"], type="answer"))
            self.answered.set()
        elif kind == "floor":
            self.floor = bool(msg["granted"])
            if self.role == "site":
                (self.live.set if self.floor else self.live.clear)()
        elif kind == "video":
            self.video_mode = str(msg["mode"])
        _out({"peer": self.index, "event": "message", "message": {k: v for k, v in msg.items() if k != "sdp"}})

    def report(self) -> dict[str, Any]:
        now = time.monotonic()
        doc: dict[str, Any] = {
            "peer": self.index,
            "role": self.role,
            "state": self.pc.connectionState,
            "connect_s": None if self.t_connected is None else self.t_connected - self.t_offer,
            "video_mode": self.video_mode,
            "floor": self.floor,
            "now": now,
        }
        if self.counters:
            doc.update(
                audio_packets=sum(c.audio for c in self.counters),
                video_packets=sum(c.video_packets for c in self.counters),
                video_frames=sum(c.video_frames for c in self.counters),
                video_expected=sum(st[1] - st[0] + 1 for c in self.counters for st in c.streams.values() if st[5]),
                video_received=sum(st[2] for c in self.counters for st in c.streams.values() if st[5]),
            )
        if self.replay is not None:
            doc["keyframe_requests"] = self.replay.keyframe_requests
            doc["sent_video_frames"], doc["sent_audio_packets"] = self.replay.sent
        if self.role in ("probe", "site"):
            doc.update(
                decoded=dict(self.decoded),
                first_frame_after_connect_s=None
                if self.first_decoded is None or self.t_connected is None
                else self.first_decoded - self.t_connected,
                first_frame_after_offer_s=None if self.first_decoded is None else self.first_decoded - self.t_offer,
                luma=self.luma[-5:],
            )
        return doc

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.pc.close()


async def _main(args: argparse.Namespace) -> None:
    if args.bitrate:
        vpx.DEFAULT_BITRATE = args.bitrate  # the publisher's own encoder: start at the benchmark's bitrate
    peers = [Peer(args.first + i, args.role, args) for i in range(args.count)]
    by_index = {p.index: p for p in peers}
    janus: JanusSession | None = None
    if args.janus:
        janus = JanusSession(args.janus)
        await janus.create()
        for peer in peers:
            peer.janus = janus
    for peer in peers:
        await peer.start()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            break
        doc = json.loads(line)
        cmd = doc.get("cmd")
        if cmd == "report":
            _out({"event": "report", "peers": [p.report() for p in peers]})
        elif cmd == "quit":
            break
        elif "msg" in doc and doc.get("peer") in by_index:
            await by_index[doc["peer"]].on_message(doc["msg"])
    for peer in peers:
        await peer.close()
    if janus is not None:
        await janus.close()
    _out({"event": "closed"})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--role", choices=["publisher", "replay", "site", "light", "probe"], required=True)
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--first", type=int, default=0, help="index of the first peer in this process")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=180)
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--luma", type=int, default=60)
    parser.add_argument("--bitrate", type=int, default=0)
    parser.add_argument("--janus", default=None, help="Janus HTTP API URL: use VideoRoom 1234 instead of our SFU")
    parser.add_argument("--feed", type=int, default=0, help="Janus publisher id to subscribe to")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
