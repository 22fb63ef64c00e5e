"""Meetings: list, create, check, edit, cancel, single occurrences, history, readiness, iCalendar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Response

from meeting.api.convert import history_out, meeting_out, occurrence_out, readiness_out
from meeting.api.deps import AnyUser, IdPath, LangDep, Scheduler, SessionDep, SettingsDep
from meeting.errors import InvalidInput
from meeting.models import UserRole
from meeting.schemas import (
    CheckOut,
    ConflictOut,
    HistoryOut,
    MeetingIn,
    MeetingOut,
    MeetingPatch,
    OccurrenceOut,
    OccurrencePatch,
    ReadinessOut,
)
from meeting.services import ical, readiness
from meeting.services import meetings as svc
from meeting.services.recurrence import MAX_YEAR, MIN_YEAR, in_range, to_utc

router = APIRouter(prefix="/api/v1/meetings", tags=["meetings"])


@router.get("")
def list_occurrences(
    user: AnyUser,
    db: SessionDep,
    start: Annotated[datetime | None, Query(alias="from", description="Default: now")] = None,
    end: Annotated[datetime | None, Query(alias="to", description="Default: 31 days after 'from'")] = None,
    site: Annotated[str | None, Query(max_length=8)] = None,
) -> list[OccurrenceOut]:
    """Occurrences in a window (a site operator sees only their site's)."""
    for v in (start, end):
        if v is not None and not in_range(v):
            raise InvalidInput(
                "Thời gian phải trong khoảng năm {lo}–{hi}", field="from", lo=MIN_YEAR, hi=MAX_YEAR
            )
    lo = to_utc(start) if start else datetime.now(UTC) - timedelta(hours=12)
    hi = to_utc(end) if end else lo + timedelta(days=31)
    if user.role == UserRole.OPERATOR.value:
        site = user.site_id
    rows = svc.occurrences_between(db, lo, hi, site_id=site)
    return [occurrence_out(o, m) for o, m in rows]


@router.post("", status_code=201)
def create_meeting(body: MeetingIn, user: Scheduler, db: SessionDep, settings: SettingsDep) -> MeetingOut:
    m = svc.create(db, settings, body, user.username)
    db.commit()
    return meeting_out(m)


@router.post("/check")
def check_meeting(body: MeetingIn, user: Scheduler, db: SessionDep, settings: SettingsDep) -> CheckOut:
    """Dry run of a create: sites, occurrences and conflicts, storing nothing (the form's live warning)."""
    p = svc.plan(db, settings, body)
    return CheckOut(
        ok=not p.conflicts,
        sites=len(p.site_ids),
        occurrences=len(p.intervals),
        conflicts=[ConflictOut.model_validate(c.as_dict()) for c in p.conflicts[:200]],
        total_conflicts=len(p.conflicts),
    )


@router.get("/{meeting_id}")
def get_meeting(meeting_id: IdPath, user: AnyUser, db: SessionDep) -> MeetingOut:
    return meeting_out(svc.get_for(db, user, meeting_id))


@router.patch("/{meeting_id}")
def edit_meeting(
    meeting_id: IdPath, body: MeetingPatch, user: Scheduler, db: SessionDep, settings: SettingsDep
) -> MeetingOut:
    m = svc.update(db, settings, meeting_id, body, user.username)
    db.commit()
    return meeting_out(m)


@router.post("/{meeting_id}/cancel")
def cancel_meeting(meeting_id: IdPath, user: Scheduler, db: SessionDep) -> MeetingOut:
    m = svc.cancel(db, meeting_id, user.username)
    db.commit()
    return meeting_out(m)


@router.patch("/{meeting_id}/occurrences/{occurrence_id}")
def edit_occurrence(
    meeting_id: IdPath,
    occurrence_id: IdPath,
    body: OccurrencePatch,
    user: Scheduler,
    db: SessionDep,
    settings: SettingsDep,
) -> OccurrenceOut:
    occ = svc.edit_occurrence(db, settings, meeting_id, occurrence_id, body, user.username)
    db.commit()
    return occurrence_out(occ, svc.get(db, meeting_id))


@router.get("/{meeting_id}/history")
def meeting_history(meeting_id: IdPath, user: AnyUser, db: SessionDep) -> list[HistoryOut]:
    svc.get_for(db, user, meeting_id)
    return [history_out(h) for h in svc.history(db, meeting_id)]


@router.get("/{meeting_id}/readiness")
def meeting_readiness(
    meeting_id: IdPath, user: AnyUser, db: SessionDep, settings: SettingsDep, lang: LangDep
) -> ReadinessOut:
    """'Sẵn sàng N/M' with the reason for every site that is not ready."""
    m = svc.get_for(db, user, meeting_id)
    return readiness_out(readiness.for_meeting(db, settings, m), lang)


@router.get(
    "/{meeting_id}/calendar.ics", response_class=Response, responses={200: {"content": {"text/calendar": {}}}}
)
def meeting_calendar(meeting_id: IdPath, user: AnyUser, db: SessionDep) -> Response:
    m = svc.get_for(db, user, meeting_id)
    return Response(ical.meeting_calendar(db, m), media_type="text/calendar; charset=utf-8")
