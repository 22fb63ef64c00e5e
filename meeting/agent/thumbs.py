"""Hall-wall thumbnails from the room agent: a 160×90 JPEG of what the room's source shows, at the server's pace.

The server tells every site how often to send (``thumbs`` message, ``interval_s``; 0 = stop) so that all sites
together stay within the wall's bandwidth budget; the agent answers with ``thumb`` messages on its signaling
socket. The picture is the source's latest frame — the camera keeps running while the site is not speaking (the
:class:`~meeting.agent.media.Gate` only stops it from being *sent*), so the hall sees the room all along. The
synthetic ``testsrc`` pauses while the site has no floor, so for it a test card of the same look is drawn.
JPEG comes from FFmpeg's ``mjpeg`` encoder through PyAV (already a dependency; no Pillow needed).
"""

from __future__ import annotations

import base64
import fractions
import json
import logging
import time
from typing import Any, Protocol

import av
import numpy as np
from av import VideoFrame

logger = logging.getLogger(__name__)

SIZE = (160, 90)
MAX_BYTES = 12 * 1024


class _Sender(Protocol):
    async def send(self, message: str) -> None: ...


def encode_jpeg(frame: VideoFrame, quality: int = 5) -> bytes:
    """``frame`` scaled to 160×90 as one JPEG (``quality`` = FFmpeg qscale, 2 best … 31 worst)."""
    small = frame.reformat(width=SIZE[0], height=SIZE[1], format="yuvj420p")
    small.pts = 0
    small.time_base = fractions.Fraction(1, 1)
    ctx = av.CodecContext.create("mjpeg", "w")
    ctx.width, ctx.height, ctx.pix_fmt = SIZE[0], SIZE[1], "yuvj420p"
    ctx.time_base = fractions.Fraction(1, 1)
    ctx.options = {"qmin": str(quality), "qmax": str(quality)}
    packets = [*ctx.encode(small), *ctx.encode(None)]
    return b"".join(bytes(p) for p in packets)  # type: ignore[arg-type]


def card_frame(luma: int = 90, now: float | None = None) -> VideoFrame:
    """A frame that looks like ``testsrc`` (flat grey with a moving bright bar), for the synthetic source."""
    width, height = SIZE
    y = np.full((height, width), luma, dtype=np.uint8)
    x0 = int(((now if now is not None else time.time()) % 1.0) * width)
    y[:, x0 : x0 + width // 16] = 255 - luma
    uv = np.full((height // 2, width), 128, dtype=np.uint8)
    return VideoFrame.from_ndarray(np.vstack([y, uv]), format="yuv420p")


def current_frame(media: Any) -> VideoFrame | None:
    """The latest picture of the session's video source, or None (no video, nothing captured yet)."""
    from meeting.agent.media import Gate
    from meeting.media.testpeer import SyntheticVideo

    for sender in media.pc.getSenders():
        track = sender.track
        if track is None or track.kind != "video":
            continue
        if isinstance(track, SyntheticVideo):
            return card_frame()
        if isinstance(track, Gate):
            latest: VideoFrame | None = getattr(track, "latest", None)
            return latest
    return None


class ThumbSender:
    """Sends a thumbnail every ``interval_s`` from the agent's conversation loop (:meth:`tick` is cheap)."""

    def __init__(self) -> None:
        self.interval_s = 0.0
        self.sent = 0
        self._last = 0.0
        self._failed = False

    async def tick(self, ws: _Sender, media: Any) -> None:
        if self.interval_s <= 0 or time.monotonic() - self._last < self.interval_s:
            return
        self._last = time.monotonic()
        try:
            frame = current_frame(media)
            if frame is None:
                return
            data = encode_jpeg(frame)
            if len(data) > MAX_BYTES:
                data = encode_jpeg(frame, quality=20)
            if len(data) > MAX_BYTES:
                return
        except (ValueError, OSError) as exc:  # av errors subclass these
            if not self._failed:
                logger.warning("hall-wall thumbnail failed: %s", exc)
                self._failed = True
            return
        await ws.send(json.dumps({"type": "thumb", "jpeg": base64.b64encode(data).decode()}))
        self.sent += 1
