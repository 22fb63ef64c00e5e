"""A meeting's recordings: the list (figures, status) and the file download, for whoever may see the meeting."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel

from meeting.api.deps import AnyUser, IdPath, Scheduler, SessionDep, SettingsDep
from meeting.errors import NotFound
from meeting.media.sfu import MediaError, Sfu
from meeting.models import Recording, RecordingStatus
from meeting.services import meetings as svc
from meeting.services import recordings
from meeting.services.recurrence import to_local

router = APIRouter(prefix="/api/v1", tags=["recordings"])


class RecordingOut(BaseModel):
    id: int
    meeting_id: int
    status: str
    started_at: datetime
    ended_at: datetime | None
    duration_s: float | None
    size_bytes: int | None
    download: str | None
    """Relative URL of the file, only while it exists (finished and not purged)."""


def recording_out(rec: Recording) -> RecordingOut:
    return RecordingOut(
        id=rec.id,
        meeting_id=rec.meeting_id,
        status=rec.status,
        started_at=to_local(rec.started_at),
        ended_at=to_local(rec.ended_at) if rec.ended_at else None,
        duration_s=rec.duration_s,
        size_bytes=rec.size_bytes,
        download=f"/api/v1/recordings/{rec.id}/file" if rec.status == RecordingStatus.DONE.value else None,
    )


@router.get("/meetings/{meeting_id}/recordings")
def list_recordings(meeting_id: IdPath, user: AnyUser, db: SessionDep) -> list[RecordingOut]:
    svc.get_for(db, user, meeting_id)
    return [recording_out(r) for r in recordings.for_meeting(db, meeting_id)]


@router.get("/recordings/{recording_id}/file", response_class=FileResponse)
def download(recording_id: IdPath, user: AnyUser, db: SessionDep, settings: SettingsDep) -> FileResponse:
    """The WebM file (VP8 + Opus, as forwarded: no transcoding) if the caller may see the meeting."""
    rec, path = recordings.file_for(db, settings, user, recording_id)
    return FileResponse(path, media_type="video/webm", filename=f"meeting-{rec.meeting_id}-recording-{rec.id}.webm")


def _sfu(request: Request) -> Sfu:
    sfu: Sfu | None = getattr(request.app.state, "sfu", None)
    if sfu is None:
        raise MediaError("SFU chưa chạy")
    return sfu


@router.post("/meetings/{meeting_id}/recording/start")
async def start_recording(
    meeting_id: IdPath, request: Request, user: Scheduler, db: SessionDep, settings: SettingsDep
) -> RecordingOut:
    """Record the live meeting's floor stream (whoever holds the floor) until stopped or the room empties.

    ``async``: the recorder is attached on the SFU's event loop (it asks the speaker for a keyframe there).
    """
    from meeting.media import recorder

    svc.get(db, meeting_id)
    sfu = _sfu(request)
    sfu.room(str(meeting_id))  # 409 when the meeting is not live
    rec = recorder.record_meeting(sfu, str(meeting_id), meeting_id, request.app.state.sessions, settings)
    row = db.get(Recording, rec.recording_id)
    assert row is not None
    return recording_out(row)


@router.post("/meetings/{meeting_id}/recording/stop")
async def stop_recording(meeting_id: IdPath, request: Request, user: Scheduler, db: SessionDep) -> RecordingOut:
    """End the recording; its row is complete (duration, size) when this returns."""
    from meeting.media import recorder

    svc.get(db, meeting_id)
    sink = _sfu(request).rooms.get(str(meeting_id))
    rec = sink.recorder if sink is not None else None
    if not isinstance(rec, recorder.Recorder) or rec.recording_id is None:
        raise NotFound("Cuộc họp {id} không đang được ghi hình", id=meeting_id)
    recorder.stop(_sfu(request), str(meeting_id))
    db.expire_all()
    row = db.get(Recording, rec.recording_id)
    assert row is not None
    return recording_out(row)
