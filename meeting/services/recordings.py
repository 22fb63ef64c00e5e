"""Recordings as the service keeps them: one ``meeting_recordings`` row per file, listing, download, retention purge.

The media side (:mod:`meeting.media.recorder`) writes the file; this module only names it, stores its figures and
deletes it when the retention period is over. Rows stay (status ``purged``) so the meeting page can say that a
recording existed; only the file goes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from meeting.errors import NotFound
from meeting.models import Recording, RecordingStatus, User
from meeting.services import meetings as svc
from meeting.settings import Settings

logger = logging.getLogger(__name__)


def begin(session: Session, settings: Settings, meeting_id: int) -> tuple[Recording, Path]:
    """A new row (status ``recording``) for ``meeting_id`` and the path its file is to be written to."""
    svc.get(session, meeting_id)  # NotFound for an unknown meeting
    now = datetime.now(UTC)
    rec = Recording(meeting_id=meeting_id, file_name="", status=RecordingStatus.RECORDING.value, started_at=now)
    session.add(rec)
    session.flush()
    rec.file_name = f"meeting-{meeting_id}/{now:%Y%m%dT%H%M%SZ}-{rec.id}.webm"
    path = settings.recordings_path() / rec.file_name
    path.parent.mkdir(parents=True, exist_ok=True)
    return rec, path


def finish(session: Session, recording_id: int, result: dict[str, Any]) -> Recording:
    """Store a finished recording's figures (``RecordingResult.as_dict()``)."""
    rec = session.get(Recording, recording_id)
    if rec is None:
        raise NotFound("Không có bản ghi hình {id}", id=recording_id)
    ok = result.get("state") == "closed" and int(result.get("size_bytes") or 0) > 0
    rec.status = (RecordingStatus.DONE if ok else RecordingStatus.FAILED).value
    rec.ended_at = datetime.fromisoformat(result["ended_at"]) if result.get("ended_at") else datetime.now(UTC)
    rec.duration_s = float(result.get("duration_s") or 0.0)
    rec.size_bytes = int(result.get("size_bytes") or 0)
    rec.detail = {k: result[k] for k in ("frames", "dropped", "shifted", "speakers", "error") if k in result}
    logger.info("recording %d of meeting %d: %s, %.1f s, %d bytes", rec.id, rec.meeting_id, rec.status,
                rec.duration_s, rec.size_bytes)
    return rec


def for_meeting(session: Session, meeting_id: int) -> list[Recording]:
    """The meeting's recordings, oldest first (finished, failed and purged: the page says which)."""
    rows = session.scalars(
        select(Recording).where(Recording.meeting_id == meeting_id).order_by(Recording.started_at, Recording.id)
    )
    return list(rows)


def file_for(session: Session, settings: Settings, user: User, recording_id: int) -> tuple[Recording, Path]:
    """A finished recording's file, if ``user`` may see its meeting (operators: only their site's meetings)."""
    rec = session.get(Recording, recording_id)
    if rec is None:
        raise NotFound("Không có bản ghi hình {id}", id=recording_id)
    svc.get_for(session, user, rec.meeting_id)  # Forbidden for someone who may not see the meeting
    path = settings.recordings_path() / rec.file_name
    if rec.status != RecordingStatus.DONE.value or not path.is_file():
        raise NotFound("Không có bản ghi hình {id}", id=recording_id)
    return rec, path


@dataclass(frozen=True)
class Purged:
    recording_id: int
    meeting_id: int
    file_name: str
    size_bytes: int
    removed: bool
    """False when the file was already gone (the row is marked purged all the same)."""


def purge(session: Session, settings: Settings, now: datetime | None = None) -> list[Purged]:
    """Delete the files of recordings that ended more than ``recording_retention_days`` ago; mark rows purged."""
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=settings.recording_retention_days)
    rows = session.scalars(
        select(Recording).where(
            Recording.status.in_([RecordingStatus.DONE.value, RecordingStatus.FAILED.value]),
            Recording.ended_at.is_not(None),
            Recording.ended_at < cutoff,
        )
    )
    out: list[Purged] = []
    base = settings.recordings_path()
    for rec in rows:
        path = base / rec.file_name
        removed = path.is_file()
        if removed:
            path.unlink()
        rec.status = RecordingStatus.PURGED.value
        rec.purged_at = now
        out.append(Purged(rec.id, rec.meeting_id, rec.file_name, rec.size_bytes or 0, removed))
        logger.info("recording %d of meeting %d purged (%s)", rec.id, rec.meeting_id, rec.file_name)
    return out
