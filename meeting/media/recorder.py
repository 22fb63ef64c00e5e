"""Records a room's floor stream (whoever holds it) to a WebM file by muxing the forwarded packets, never transcoding.

The SFU already holds every frame encoded (VP8 pictures, Opus packets) on the room's timeline; the recorder is a
:class:`~meeting.media.sfu.RecordingSink` that picks the floor-holder's frames and hands them to FFmpeg's WebM
muxer through PyAV's ``add_mux_stream`` (streams without a codec context: no encoder or decoder is ever opened,
so a recording costs a file write per frame, not a core).

On a floor change the recorder asks the new speaker for a keyframe and drops its pictures until one arrives (a
decoder cannot start elsewhere); both kinds are re-anchored at that moment so the file's timestamps stay
continuous and strictly increasing whatever the new publisher's RTP clock says. The WebM header needs the picture
size, so the file is opened at the first keyframe (its size read from the VP8 header); audio before it is dropped
(the recorder asks for that keyframe at once, so this is a fraction of a second).
"""

from __future__ import annotations

import fractions
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import av

from meeting.media.passthrough import CLOCK_RATES, EncodedFrame

if TYPE_CHECKING:
    from av.container import OutputContainer
    from av.stream import Stream
    from sqlalchemy.orm import Session, sessionmaker

    from meeting.media.sfu import Peer, Sfu, Source
    from meeting.settings import Settings

logger = logging.getLogger(__name__)

State = Literal["waiting", "recording", "closed", "failed"]
FORMAT = "webm"
SUFFIX = ".webm"
KEYFRAME_WAIT_S = 3.0
"""With no video keyframe this long after the first audio, the file is opened anyway (audio-only speaker)."""
FALLBACK_SIZE = (640, 360)
SETTLE_S = 1.0
"""Each speaker's first second is held back to learn its stream's least network delay (see ``_flush``)."""
_TIME_BASES = {kind: fractions.Fraction(1, rate) for kind, rate in CLOCK_RATES.items()}
_MIN_STEP = {"audio": 960, "video": 90}
"""Least pts step per kind: one 20 ms Opus frame (overlapping audio would glitch), 1 ms of video (WebM's unit)."""


def vp8_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a VP8 keyframe (RFC 6386 §9.1: 3-byte tag, start code, 14-bit sizes), else None."""
    if len(data) < 10 or data[0] & 0x01 or data[3:6] != b"\x9d\x01\x2a":
        return None
    width = int.from_bytes(data[6:8], "little") & 0x3FFF
    height = int.from_bytes(data[8:10], "little") & 0x3FFF
    return (width, height) if width and height else None


@dataclass
class RecordingResult:
    """What a finished recording holds; the service stores it as a ``meeting_recordings`` row."""

    path: Path
    state: State
    started_at: datetime
    ended_at: datetime
    duration_s: float
    size_bytes: int
    frames: dict[str, int]
    dropped: dict[str, int]
    shifted: dict[str, int]
    speakers: list[str]
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "state": self.state,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat(),
            "duration_s": round(self.duration_s, 3),
            "size_bytes": self.size_bytes,
            "frames": dict(self.frames),
            "dropped": dict(self.dropped),
            "shifted": dict(self.shifted),
            "speakers": list(self.speakers),
            "error": self.error,
        }


@dataclass
class _Track:
    """Per kind: the muxer stream, the anchor that maps room ticks onto file ticks, the last pts written."""

    kind: str
    clock: int
    stream: Stream | None = None
    anchor: int | None = None
    last_pts: int = -1
    frames: int = 0
    dropped: int = 0
    shifted: int = 0
    """Frames whose pts had to be moved forward to keep the file strictly increasing."""
    last_in: int | None = None
    """Last room timestamp seen, modulo 2**32, and its unwrapped value (see :meth:`unwrap`)."""
    last_unwrapped: int = 0
    pending: list[tuple[EncodedFrame, int, int]] = field(default_factory=list)
    """Held-back (frame, room timestamp, arrival in file ticks) until the segment's anchor is known."""


    def unwrap(self, timestamp: int) -> int:
        """A continuous timestamp from one that is only right modulo 2**32.

        aiortc's receiver maps RTP timestamps from 0, but a frame older than the previous one (released late by
        the jitter buffer) makes it add 2**32 from then on; subscribers never notice (RTP wraps), a file would
        jump 13 hours. Steps are read as signed 32-bit differences instead.
        """
        raw = timestamp & 0xFFFFFFFF
        if self.last_in is not None:
            step = ((raw - self.last_in + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)
            self.last_unwrapped += step
        else:
            self.last_unwrapped = raw
        self.last_in = raw
        return self.last_unwrapped


@dataclass
class Recorder:
    """One room's recording; attach with :meth:`Sfu.attach_recorder` (see :func:`start`), ``close()`` ends it."""

    path: Path
    keyframe_wait_s: float = KEYFRAME_WAIT_S
    on_close: Callable[[RecordingResult], None] | None = None
    """Called once when the recording ends (stopped, its room emptied, or failed): where the service stores it."""
    clock: Callable[[], float] = time.monotonic
    settle_s: float = SETTLE_S
    recording_id: int | None = None
    """The ``meeting_recordings`` row, when started by :func:`record_meeting`."""
    """Wall clock of the file's timeline (a test drives it by hand)."""
    state: State = "waiting"
    error: str | None = None
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    _container: OutputContainer | None = None
    _tracks: dict[str, _Track] = field(default_factory=dict)
    _speaker: Peer | None = None
    _waiting_keyframe: bool = True
    _t0: float | None = None
    """Monotonic time of the file's pts 0 (the first frame written)."""
    _seg_now: float = 0.0
    """Monotonic time the current speaker's segment began (file opened, or floor changed)."""
    _seg_base: float = 0.0
    """File time (s) the current segment starts at: never before what is already written."""
    _first_audio: float | None = None
    _speakers: list[str] = field(default_factory=list)
    _ended_at: datetime | None = None

    def __post_init__(self) -> None:
        self._tracks = {kind: _Track(kind, clock) for kind, clock in CLOCK_RATES.items()}

    # -- the sink ---------------------------------------------------------------------------------------------
    def on_frame(self, source: Source, frame: EncodedFrame, timestamp: int) -> None:
        """Called by the SFU for every published frame; keeps the floor-holder's. Never raises into the SFU."""
        if self.state in ("closed", "failed"):
            return
        try:
            if source.peer is not source.room.speaker():
                return
            self._write(source, frame, timestamp)
        except Exception as exc:  # a full disk or a muxer error ends the recording, never the meeting
            logger.exception("recording %s failed", self.path)
            self.error = f"{type(exc).__name__}: {exc}"
            self._finish("failed")

    def _switch(self, source: Source) -> None:
        """A new floor-holder: re-anchor both kinds on the file clock and wait for its keyframe."""
        self._speaker = source.peer
        self._speakers.append(source.peer.site_id)
        self._waiting_keyframe = True
        # The new segment starts now on the wall clock, or after the last frame written if the previous
        # speaker's own clock ran ahead of ours (a late first keyframe puts all its later frames ahead).
        for track in self._tracks.values():
            self._flush(track)  # the previous speaker's held-back tail (only if it spoke under a second)
            track.anchor = None
        now = self.clock()
        self._seg_now = now
        ends = [(t.last_pts + _MIN_STEP[t.kind]) / t.clock for t in self._tracks.values() if t.frames]
        self._seg_base = max([now - self._t0, *ends]) if self._t0 is not None else 0.0
        video = source.peer.sources.get("video")
        if video is not None:
            video.request_keyframe()
        logger.info("recording %s: speaker is now %s", self.path.name, source.peer.site_id)

    def _write(self, source: Source, frame: EncodedFrame, timestamp: int) -> None:
        if source.peer is not self._speaker:
            self._switch(source)
        track = self._tracks[source.kind]
        now = self.clock()
        timestamp = track.unwrap(timestamp)
        if source.kind == "video" and self._waiting_keyframe:
            if not frame.keyframe:
                track.dropped += 1
                return
            self._waiting_keyframe = False
        if self._container is None:
            if source.kind == "audio":
                self._first_audio = self._first_audio or now
                if now - self._first_audio < self.keyframe_wait_s:
                    track.dropped += 1
                    return
            size = vp8_size(frame.data) if source.kind == "video" else None
            self._open(size or FALLBACK_SIZE)
        if self._t0 is None:
            self._t0 = self._seg_now = now
            self._seg_base = 0.0
        if track.anchor is not None:
            self._mux(track, frame, timestamp + track.anchor)
            return
        # A segment's first second is held back: the anchor is the least delay seen in it, so a first keyframe
        # that arrived late (it is large) does not push every later frame ahead of the wall clock.
        arrival = int((self._seg_base + now - self._seg_now) * track.clock)
        track.pending.append((frame, timestamp, arrival))
        if arrival - track.pending[0][2] >= self.settle_s * track.clock:
            self._flush(track)

    def _flush(self, track: _Track) -> None:
        """Anchor a track's held-back frames on their least delay and write them."""
        if not track.pending:
            return
        pending, track.pending = track.pending, []
        least_delay = min(arrival - ts for _, ts, arrival in pending)
        # ...but never before the segment's start: the previous speaker's frames are already written there. The
        # start is rounded, and this track's own end taken in ticks, because seconds do not survive the round trip
        # (``int(97056 / 48000 * 48000) == 97055``): one tick early shifted every frame of the segment.
        start = round(self._seg_base * track.clock)
        if track.frames:
            start = max(start, track.last_pts + _MIN_STEP[track.kind])
        track.anchor = max(least_delay, start - min(ts for _, ts, _ in pending))
        for frame, ts, _ in pending:
            self._mux(track, frame, ts + track.anchor)

    def _mux(self, track: _Track, frame: EncodedFrame, pts: int) -> None:
        assert self._container is not None and track.stream is not None
        step = _MIN_STEP[track.kind]
        if track.last_pts >= 0 and pts < track.last_pts + step:
            pts = track.last_pts + step
            track.shifted += 1
        track.last_pts = pts
        packet = av.Packet(frame.data)
        packet.stream = track.stream
        packet.pts = pts
        packet.dts = pts
        packet.time_base = _TIME_BASES[track.kind]
        if frame.keyframe:
            packet.is_keyframe = True
        self._container.mux(packet)
        track.frames += 1

    def _open(self, size: tuple[int, int]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        container = av.open(str(self.path), "w", format=FORMAT)
        video = container.add_mux_stream("vp8", width=size[0], height=size[1])
        audio = container.add_mux_stream("opus", rate=48000)
        video.time_base = fractions.Fraction(1, 1000)
        audio.time_base = fractions.Fraction(1, 1000)
        self._tracks["video"].stream = video
        self._tracks["audio"].stream = audio
        self._container = container
        self._set_state("recording")
        logger.info("recording %s: file opened (%dx%d)", self.path, *size)

    # -- lifecycle --------------------------------------------------------------------------------------------
    def _set_state(self, state: State) -> None:
        logger.info("recording %s: %s -> %s", self.path.name, self.state, state)
        self.state = state

    def _finish(self, state: State) -> None:
        if state == "closed" and self._container is not None:
            try:
                for track in self._tracks.values():
                    self._flush(track)
            except Exception as exc:
                logger.exception("recording %s: writing the last frames failed", self.path)
                self.error = f"{type(exc).__name__}: {exc}"
                state = "failed"
        container, self._container = self._container, None
        if container is not None:
            try:
                container.close()
            except Exception as exc:  # the trailer could not be written: keep what is on disk, say so
                logger.exception("recording %s: closing the file failed", self.path)
                self.error = self.error or f"{type(exc).__name__}: {exc}"
                state = "failed"
        self._ended_at = datetime.now(UTC)
        self._set_state(state)
        if self.on_close is not None:
            try:
                self.on_close(self.result())
            except Exception:  # storing the figures must not break the SFU's teardown
                logger.exception("recording %s: on_close failed", self.path)

    def close(self) -> None:
        """End the recording and write the file's trailer; safe to call twice."""
        if self.state not in ("closed", "failed"):
            self._finish("closed")

    def result(self) -> RecordingResult:
        """The recording's figures (call after :meth:`close`)."""
        end = self._ended_at or datetime.now(UTC)
        duration = 0.0
        for track in self._tracks.values():
            if track.frames:
                duration = max(duration, (track.last_pts + 1) / track.clock)
        return RecordingResult(
            path=self.path,
            state=self.state,
            started_at=self.started_at,
            ended_at=end,
            duration_s=duration,
            size_bytes=self.path.stat().st_size if self.path.exists() else 0,
            frames={k: t.frames for k, t in self._tracks.items()},
            dropped={k: t.dropped for k, t in self._tracks.items()},
            shifted={k: t.shifted for k, t in self._tracks.items()},
            speakers=list(self._speakers),
            error=self.error,
        )


def start(
    sfu: Sfu, room_id: str, path: Path, on_close: Callable[[RecordingResult], None] | None = None
) -> Recorder:
    """Start recording ``room_id``'s floor stream into ``path`` (a ``.webm`` file; its directory is created)."""
    recorder = Recorder(path, on_close=on_close)
    sfu.attach_recorder(room_id, recorder)
    speaker = sfu.room(room_id).speaker()
    video = speaker.sources.get("video") if speaker is not None else None
    if video is not None:
        video.request_keyframe()  # the file can only start at a keyframe
    return recorder


def stop(sfu: Sfu, room_id: str) -> RecordingResult | None:
    """Stop recording ``room_id``; the finished recording's figures, or None if it was not being recorded."""
    sink = sfu.detach_recorder(room_id)
    return sink.result() if isinstance(sink, Recorder) else None


def record_meeting(
    sfu: Sfu, room_id: str, meeting_id: int, sessions: sessionmaker[Session], settings: Settings
) -> Recorder:
    """Record a meeting's room with a ``meeting_recordings`` row: created now, completed when the recording ends.

    The row is completed whichever way the recording ends (:func:`stop`, the room emptying, a write error).
    """
    from meeting.db import session_scope
    from meeting.services import recordings

    with session_scope(sessions) as session:
        row, path = recordings.begin(session, settings, meeting_id)
        recording_id = row.id

    def store(result: RecordingResult) -> None:
        with session_scope(sessions) as session:
            recordings.finish(session, recording_id, result.as_dict())

    rec = start(sfu, room_id, path, on_close=store)
    rec.recording_id = recording_id
    return rec
