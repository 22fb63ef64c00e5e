"""What the room PC sends and plays: camera/mic (or a test source) gated by the floor, and the meeting it receives.

The agent's uplink stays idle until the site gets the floor (the host hall always sends): every outgoing track
waits on one ``live`` event. The ``null`` sink does not decode at all: it taps the encoded frames out of aiortc's
receivers with :func:`meeting.media.passthrough.tap_receiver` and counts them, which is what an unattended room PC
(or a load test) needs to prove it receives; ``alsa`` plays the audio on the PC's sound card and a file path
records both streams.

Live control adds two more gates: ``mute`` (the microphone's frames are drained, nothing is sent; the SFU drops a
muted site's audio as well) and a rehearsal, which opens the uplink for N seconds whoever holds the floor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCPeerConnection
from aiortc.contrib.media import MediaPlayer, MediaRecorder
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, MediaStreamTrack

from meeting.agent.config import AgentConfigError
from meeting.media.passthrough import EncodedFrame, tap_receiver
from meeting.media.sfu import rtc_configuration

logger = logging.getLogger(__name__)

TESTSRC_SIZE = (320, 180)
TESTSRC_FPS = 15
UPLINK_STALL_S = 4.0
"""Video packets sent must move within this while the uplink is open, else the connection is renewed."""


class Gate(MediaStreamTrack):
    """Passes the inner track's frames only while ``live`` is set; drains them otherwise (a camera keeps going)."""

    def __init__(self, inner: MediaStreamTrack, live: asyncio.Event) -> None:
        super().__init__()
        self.kind = inner.kind
        self._inner = inner
        self._live = live
        self.latest: Any = None  # the source's newest frame, sent or not (hall-wall thumbnails: agent/thumbs.py)

    async def recv(self) -> Any:
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            frame = self.latest = await self._inner.recv()
            if self._live.is_set():
                return frame

    def stop(self) -> None:
        super().stop()
        self._inner.stop()


@dataclass
class Reception:
    """What arrived: encoded frames per kind, keyframes, first and last arrival (monotonic)."""

    frames: dict[str, int] = field(default_factory=lambda: {"audio": 0, "video": 0})
    keyframes: int = 0
    first_video_at: float | None = None
    last_at: float | None = None

    def on_frame(self, frame: EncodedFrame) -> None:
        self.frames[frame.kind] += 1
        self.last_at = time.monotonic()
        if frame.kind == "video":
            if frame.keyframe:
                self.keyframes += 1
            if self.first_video_at is None:
                self.first_video_at = self.last_at


def _source_tracks(source: str, live: asyncio.Event) -> tuple[list[MediaStreamTrack], MediaPlayer | None]:
    if source in ("testsrc", "testsrc-audio"):
        from meeting.media.testpeer import SyntheticAudio, SyntheticVideo

        width, height = TESTSRC_SIZE
        if source == "testsrc-audio":  # a room without a camera: what a rehearsal must catch
            return [SyntheticAudio(live)], None
        return [SyntheticVideo(width, height, TESTSRC_FPS, 90, live), SyntheticAudio(live)], None
    if source.startswith("v4l2:"):
        try:
            player = MediaPlayer(source[5:], format="v4l2", options={"video_size": "640x360", "framerate": "15"})
        except (OSError, ValueError) as exc:  # av.FFmpegError subclasses these
            raise AgentConfigError("Không mở được camera {source}: {error} (PyAV cần FFmpeg có v4l2)",
                                   field="source", source=source, error=str(exc)) from None
        audio: MediaStreamTrack = AudioStreamTrack()  # silence unless the PC has a microphone ALSA can open
        with contextlib.suppress(OSError, ValueError):
            mic = MediaPlayer("default", format="alsa")
            if mic.audio is not None:
                audio = mic.audio
        assert player.video is not None
        return [Gate(player.video, live), Gate(audio, live)], player
    player = MediaPlayer(source, loop=True)
    tracks: list[MediaStreamTrack] = [Gate(t, live) for t in (player.video, player.audio) if t is not None]
    return tracks, player


class MediaSession:
    """One peer connection to the SFU for one meeting; ``close()`` is safe to call twice."""

    def __init__(self, source: str, sink: str, *, host: bool) -> None:
        self.pc = RTCPeerConnection(configuration=rtc_configuration())
        self.live = asyncio.Event()
        self.host = host
        self.floor = False
        self.rehearsing = False
        self.unmuted = asyncio.Event()
        self.unmuted.set()
        if host:
            self.live.set()
        self.reception = Reception()
        self._sink = sink
        self._recorder: MediaRecorder | None = None
        self._player: MediaPlayer | None = None
        self._closed = False
        self._video_sent: tuple[int, float] | None = None
        """(video packets sent, when that count last moved): see :meth:`video_stalled`."""
        tracks, self._player = _source_tracks(source, self.live)
        tracks = [Gate(t, self.unmuted) if t.kind == "audio" else t for t in tracks]
        for track in tracks:
            self.pc.addTrack(track)
        for kind in ("audio", "video"):
            if not any(t.kind == kind for t in tracks):
                self.pc.addTransceiver(kind, direction="recvonly")
        if sink not in ("null",):
            self._recorder = (MediaRecorder("default", format="alsa") if sink == "alsa" else MediaRecorder(sink))

        @self.pc.on("track")
        def _on_track(track: MediaStreamTrack) -> None:
            receiver = next(t.receiver for t in self.pc.getTransceivers() if t.receiver.track is track)
            if self._recorder is None:
                tap_receiver(receiver, track.kind, self.reception.on_frame)
            elif self._sink != "alsa" or track.kind == "audio":
                self._recorder.addTrack(track)

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def answer(self, sdp: str) -> None:
        from aiortc import RTCSessionDescription

        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        if self._recorder is not None:
            await self._recorder.start()

    def set_floor(self, granted: bool) -> None:
        self.floor = granted
        self._open_uplink()

    def set_muted(self, muted: bool) -> None:
        (self.unmuted.clear if muted else self.unmuted.set)()

    def _open_uplink(self) -> None:
        (self.live.set if self.host or self.floor or self.rehearsing else self.live.clear)()

    async def video_stalled(self, now: float) -> bool:
        """True when the uplink should carry video but its packet count has not moved for ``UPLINK_STALL_S``.

        aiortc's sender loop ends for good, without a word, when its track or transport raises once (and a hung
        encoder call stops it too); audio on the same connection goes on, so the room's picture is gone while
        everything looks connected. Seen under heavy load (the host hall's video stopped for every commune). The
        runner answers a stall with a new connection.
        """
        sender = next((s for s in self.pc.getSenders() if s.track is not None and s.track.kind == "video"), None)
        if sender is None or not self.live.is_set() or self.pc.connectionState != "connected":
            self._video_sent = None
            return False
        stats = await sender.getStats()
        sent = sum(int(getattr(x, "packetsSent", 0) or 0) for x in stats.values()
                   if getattr(x, "type", "") == "outbound-rtp")
        if self._video_sent is None or sent != self._video_sent[0]:
            self._video_sent = (sent, now)
            return False
        return now - self._video_sent[1] > UPLINK_STALL_S

    async def rehearse(self, seconds: float) -> tuple[int, int]:
        """Publish camera + microphone for ``seconds``; returns (video frames, audio packets) received meanwhile."""
        before = dict(self.reception.frames)
        self.rehearsing = True
        self._open_uplink()
        try:
            await asyncio.sleep(seconds)
        finally:
            self.rehearsing = False
            self._open_uplink()
        got = self.reception.frames
        return got["video"] - before["video"], got["audio"] - before["audio"]

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._recorder is not None:
            with contextlib.suppress(Exception):
                await self._recorder.stop()
        await self.pc.close()
