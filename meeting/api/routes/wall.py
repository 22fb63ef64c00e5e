"""The hall wall: the latest low-rate thumbnail of every connected site, so the hall sees who is there.

Sites send ``{"type": "thumb", "jpeg": "<base64>"}`` over their signaling socket (a browser from a canvas, the
room agent from its source); the server keeps only the latest one per (meeting, site), in memory — a thumbnail is
worth nothing a second later, so it never touches the database. How often sites send is the server's choice:
``thumbs`` messages carry an interval computed from a total budget (:data:`DEFAULT_BUDGET_KBPS`, env
``LIENTHONG_WALL_BUDGET_KBPS``) and the number of connected sites, never below :data:`MIN_INTERVAL_S`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from meeting.api.deps import IdPath, Scheduler, SessionDep, SitePath
from meeting.errors import MeetingError, NotFound
from meeting.models import Site
from meeting.services import meetings as svc
from meeting.services.recurrence import to_local

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["wall"])

MAX_JPEG_BYTES = 12 * 1024
MAX_SIZE = (160, 90)
MIN_INTERVAL_S = 1.0
DEFAULT_BUDGET_KBPS = 2000.0
ASSUMED_THUMB_BYTES = 6 * 1024
"""Size used for the interval before any thumbnail arrived (then the running average of real ones)."""


def _(msgid: str) -> str:
    """Marks a msgid for the catalog (gettext_noop); the error renders it in the reader's language."""
    return msgid


class ThumbRejected(MeetingError):
    """A thumbnail that is not a small JPEG; the site gets an ``error`` message naming what is wrong."""


def budget_kbps() -> float:
    """The wall's total budget: ``LIENTHONG_WALL_BUDGET_KBPS`` or :data:`DEFAULT_BUDGET_KBPS`."""
    raw = os.environ.get("LIENTHONG_WALL_BUDGET_KBPS", "")
    try:
        value = float(raw) if raw else DEFAULT_BUDGET_KBPS
    except ValueError:
        logger.warning("LIENTHONG_WALL_BUDGET_KBPS=%r is not a number; using %s", raw, DEFAULT_BUDGET_KBPS)
        value = DEFAULT_BUDGET_KBPS
    return value if value > 0 else DEFAULT_BUDGET_KBPS


def interval_for(sites: int, avg_bytes: float, budget: float) -> float:
    """Seconds between thumbnails per site so that ``sites`` of them stay within ``budget`` kbit/s in total."""
    if sites <= 0:
        return 0.0
    seconds = sites * avg_bytes * 8 / 1000 / budget
    return round(max(MIN_INTERVAL_S, seconds), 2)


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG's start-of-frame segment; ``ValueError`` when it is not a baseline/progressive
    JPEG. Parsing the header is enough: the wall only relays the bytes, it never decodes them."""
    if len(data) < 4 or data[:2] != b"\xff\xd8":
        raise ValueError("no JPEG start marker")
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            raise ValueError("broken JPEG segment")
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if marker in (0xC0, 0xC1, 0xC2) and i + 9 <= len(data):
            return int.from_bytes(data[i + 7 : i + 9], "big"), int.from_bytes(data[i + 5 : i + 7], "big")
        if marker == 0xDA:
            break
        i += 2 + length
    raise ValueError("no JPEG frame header")


def decode_thumb(text: Any) -> bytes:
    """The JPEG bytes of a ``thumb`` message, checked: base64, ≤ 12 KB, JPEG, at most 160×90."""
    if not isinstance(text, str):
        raise ThumbRejected(_("Ảnh thu nhỏ phải là chuỗi base64"), field="jpeg")
    if len(text) > (MAX_JPEG_BYTES * 4) // 3 + 8:
        raise ThumbRejected(_("Ảnh thu nhỏ quá lớn (tối đa {limit} byte)"), field="jpeg", limit=MAX_JPEG_BYTES)
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ThumbRejected(_("Ảnh thu nhỏ phải là chuỗi base64"), field="jpeg") from None
    if len(data) > MAX_JPEG_BYTES:
        raise ThumbRejected(_("Ảnh thu nhỏ quá lớn (tối đa {limit} byte)"), field="jpeg", limit=MAX_JPEG_BYTES)
    try:
        width, height = jpeg_size(data)
    except ValueError:
        raise ThumbRejected(_("Ảnh thu nhỏ phải là JPEG"), field="jpeg") from None
    if width > MAX_SIZE[0] or height > MAX_SIZE[1] or width == 0 or height == 0:
        raise ThumbRejected(_("Ảnh thu nhỏ phải nhỏ hơn hoặc bằng 160×90 (nhận {width}×{height})"), field="jpeg",
                            width=width, height=height)
    return data


@dataclass
class Thumb:
    jpeg: bytes
    at: datetime
    mono: float
    received: int = 1
    total_bytes: int = 0


@dataclass
class WallStore:
    """Latest thumbnail per (meeting, site), plus what arrived in total (for the bandwidth figure)."""

    thumbs: dict[int, dict[str, Thumb]] = field(default_factory=dict)
    avg_bytes: float = ASSUMED_THUMB_BYTES
    intervals: dict[int, float] = field(default_factory=dict)
    told: dict[tuple[str, str], float] = field(default_factory=dict)
    pending: dict[str, asyncio.Task[None]] = field(default_factory=dict)

    def put(self, meeting_id: int, site_id: str, jpeg: bytes) -> bool:
        """Keep ``jpeg`` as the site's latest; False (dropped) when it came sooner than half the interval after
        the previous one — a client that ignores ``thumbs`` cannot blow the budget."""
        room = self.thumbs.setdefault(meeting_id, {})
        old = room.get(site_id)
        now = time.monotonic()
        if old is not None and now - old.mono < self.intervals.get(meeting_id, MIN_INTERVAL_S) / 2:
            return False
        room[site_id] = Thumb(jpeg, datetime.now(UTC), now, (old.received + 1) if old else 1,
                              (old.total_bytes if old else 0) + len(jpeg))
        self.avg_bytes = 0.9 * self.avg_bytes + 0.1 * len(jpeg)
        return True

    def latest(self, meeting_id: int) -> dict[str, Thumb]:
        return dict(self.thumbs.get(meeting_id, {}))

    def forget(self, meeting_id: int, site_id: str) -> None:
        self.thumbs.get(meeting_id, {}).pop(site_id, None)
        self.told.pop((str(meeting_id), site_id), None)


def store(app_state: Any) -> WallStore:
    if not hasattr(app_state, "wall"):
        app_state.wall = WallStore()
    wall: WallStore = app_state.wall
    return wall


# ----- the signaling side (called from meeting.api.routes.ws) ----------------------------------------------
REANNOUNCE_S = 1.0
"""Joins and leaves within this window lead to one room-wide update (129 sites joining in the same second must not
cost 129² messages)."""


def _interval(app_state: Any, registry: dict[tuple[str, str], Any], room: str) -> tuple[float, list[Any]]:
    entries = [(site, live) for (r, site), live in registry.items()
               if r == room and getattr(live.session, "peer_id", None) is not None]
    interval = interval_for(len(entries), store(app_state).avg_bytes, budget_kbps())
    with contextlib.suppress(ValueError):
        store(app_state).intervals[int(room)] = interval
    return interval, entries


async def _tell(app_state: Any, room: str, site: str, live: Any, interval: float) -> None:
    store(app_state).told[(room, site)] = interval
    with contextlib.suppress(Exception):
        await live.session.notify({"type": "thumbs", "interval_s": interval})


async def announce(app_state: Any, registry: dict[tuple[str, str], Any], room: str, site: str | None = None) -> None:
    """Tell the sites of ``room`` that have joined the media how often to send thumbnails.

    ``site`` (one that just sent its offer) is told at once; the others get the new interval — it depends on how
    many sites there are — in one coalesced update a second later, and only when it changed by more than 10 %.
    Sites that only hold a signaling socket (no peer yet) are neither counted nor told.
    """
    wall = store(app_state)
    if site is not None and (room, site) in registry:
        interval, _ = _interval(app_state, registry, room)
        await _tell(app_state, room, site, registry[(room, site)], interval)
    if room not in wall.pending:
        wall.pending[room] = asyncio.get_running_loop().create_task(_reannounce(app_state, registry, room))


async def _reannounce(app_state: Any, registry: dict[tuple[str, str], Any], room: str) -> None:
    wall = store(app_state)
    try:
        await asyncio.sleep(REANNOUNCE_S)
        interval, entries = _interval(app_state, registry, room)
        for site, live in entries:
            told = wall.told.get((room, site))
            if told is None or abs(told - interval) > 0.1 * interval:
                await _tell(app_state, room, site, live, interval)
    finally:
        wall.pending.pop(room, None)


def receive(app_state: Any, meeting_id: int, site_id: str, text: Any) -> bool:
    """Keep a site's thumbnail (raises :class:`ThumbRejected`, which becomes an ``error`` message)."""
    return store(app_state).put(meeting_id, site_id, decode_thumb(text))


def site_left(app_state: Any, meeting_id: int, site_id: str) -> None:
    store(app_state).forget(meeting_id, site_id)


# ----- the REST side --------------------------------------------------------------------------------------
class WallItemOut(BaseModel):
    site: str
    name: str
    at: datetime
    bytes: int
    received: int
    total_bytes: int


NO_STORE = {"Cache-Control": "no-store"}


@router.get("/meetings/{meeting_id}/wall")
def wall_list(meeting_id: IdPath, request: Request, response: Response, user: Scheduler,
              db: SessionDep) -> list[WallItemOut]:
    """The sites that have a thumbnail on the wall now (site id, name, when it was taken), by site id."""
    svc.get(db, meeting_id)  # 404 for an unknown meeting
    latest = store(request.app.state).latest(meeting_id)
    names = {s.id: s.name for s in db.query(Site).filter(Site.id.in_(list(latest)))} if latest else {}
    response.headers.update(NO_STORE)
    return [WallItemOut(site=sid, name=names.get(sid, sid), at=to_local(t.at), bytes=len(t.jpeg),
                        received=t.received, total_bytes=t.total_bytes) for sid, t in sorted(latest.items())]


@router.get("/meetings/{meeting_id}/wall/{site_id}.jpg")
def wall_thumb(meeting_id: IdPath, site_id: SitePath, request: Request, user: Scheduler,
               db: SessionDep) -> Response:
    """The latest thumbnail of one site (JPEG, never cached: the wall reloads it every second)."""
    svc.get(db, meeting_id)
    thumb = store(request.app.state).latest(meeting_id).get(site_id)
    if thumb is None:
        raise NotFound("Điểm cầu {site} chưa có ảnh trên màn hình tổng", field="site_id", site=site_id)
    return Response(thumb.jpeg, media_type="image/jpeg", headers=NO_STORE)
