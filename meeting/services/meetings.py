"""Create, edit, cancel meetings and single occurrences; every change leaves history, nothing is deleted."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from meeting.errors import Conflict, Forbidden, InvalidInput, NotFound
from meeting.models import (
    History,
    Meeting,
    MeetingStatus,
    Occurrence,
    Participant,
    ReminderSent,
    Site,
    User,
    UserRole,
    utcnow,
)
from meeting.schemas import MeetingIn, MeetingPatch, OccurrencePatch
from meeting.services import conflicts, recurrence, sites
from meeting.settings import Settings

logger = logging.getLogger(__name__)


class SchemaInvalid(InvalidInput):
    """A merged edit failed the same pydantic validation as a new meeting; the API shows its errors."""

    def __init__(self, exc: ValidationError) -> None:
        self.validation = exc
        super().__init__("Dữ liệu không hợp lệ")


@dataclass
class Plan:
    """What a create/edit would store: the sites, the occurrences and the conflicts they hit."""

    host: str
    site_ids: list[str]
    intervals: list[tuple[datetime, datetime]]
    conflicts: list[conflicts.ConflictItem]


def _snapshot(m: Meeting) -> dict[str, Any]:
    return {
        "title": m.title,
        "agenda": m.agenda,
        "start": m.start_at.isoformat(),
        "end": m.end_at.isoformat(),
        "rrule": m.rrule,
        "host_site": m.host_site_id,
        "participants": m.site_ids,
        "selectors": m.selectors,
        "status": m.status,
        "reminder_minutes": m.reminder_minutes,
        "version": m.version,
    }


def _history(
    session: Session, m: Meeting, actor: str, action: str, extra: dict[str, Any] | None = None
) -> None:
    snap = _snapshot(m)
    if extra:
        snap.update(extra)
    session.add(History(meeting_id=m.id, actor=actor, action=action, snapshot=snap))


def plan(
    session: Session, settings: Settings, data: MeetingIn, *, exclude_meeting: int | None = None
) -> Plan:
    """Resolve sites and occurrences and look for conflicts, storing nothing (also the form's live check)."""
    host = session.get(Site, data.host_site)
    if host is None or host.archived_at is not None:
        raise InvalidInput("Không có điểm cầu {site}", field="host_site", site=data.host_site)
    chosen = sites.expand(session, data.participants)
    others = [s for s in chosen if s != host.id]
    if not others:
        raise InvalidInput("Danh sách điểm cầu tham dự trống", field="participants")
    site_ids = [host.id, *others]
    try:
        intervals = recurrence.expand(
            data.start, data.end, data.rrule, settings.horizon_days, settings.max_occurrences
        )
    except recurrence.RRuleError as exc:
        raise InvalidInput(exc.msgid, field="rrule", **exc.params) from None
    found = conflicts.find(session, site_ids, intervals, exclude_meeting=exclude_meeting)
    return Plan(host.id, site_ids, intervals, found)


def _raise_conflicts(p: Plan) -> None:
    if p.conflicts:
        raise Conflict(
            "Xung đột lịch: {n} điểm cầu đã có cuộc họp trùng giờ",
            [c.as_dict() for c in p.conflicts],
            n=len({c.site for c in p.conflicts}),
        )


def _set_participants(session: Session, m: Meeting, p: Plan) -> None:
    m.participants.clear()
    session.flush()
    for sid in p.site_ids:
        m.participants.append(Participant(site_id=sid, role="host" if sid == p.host else "participant"))


def _set_occurrences(session: Session, m: Meeting, intervals: list[tuple[datetime, datetime]]) -> None:
    """Regenerate the series, keeping edited or cancelled single occurrences that are still in it."""
    existing = {o.original_start: o for o in m.occurrences}
    wanted = {s: e for s, e in intervals}
    for orig, occ in existing.items():
        if orig not in wanted:
            session.execute(delete(ReminderSent).where(ReminderSent.occurrence_id == occ.id))
            m.occurrences.remove(occ)
            session.delete(occ)
    for s, e in intervals:
        kept = existing.get(s)
        if kept is None:
            m.occurrences.append(Occurrence(original_start=s, start_at=s, end_at=e))
        elif not kept.modified:
            kept.start_at, kept.end_at = s, e


def create(session: Session, settings: Settings, data: MeetingIn, actor: str) -> Meeting:
    p = plan(session, settings, data)
    _raise_conflicts(p)
    m = Meeting(
        title=data.title,
        agenda=data.agenda,
        start_at=data.start.astimezone(UTC),
        end_at=data.end.astimezone(UTC),
        rrule=data.rrule,
        host_site_id=p.host,
        selectors=list(data.participants),
        reminder_minutes=data.reminder_minutes,
        created_by=actor,
        status=MeetingStatus.SCHEDULED.value,
        version=1,
        # set before the first flush: a new meeting has nothing to load or merge
        participants=[
            Participant(site_id=sid, role="host" if sid == p.host else "participant") for sid in p.site_ids
        ],
        occurrences=[Occurrence(original_start=s, start_at=s, end_at=e) for s, e in p.intervals],
    )
    session.add(m)
    session.flush()
    _history(session, m, actor, "create")
    logger.info(
        "meeting %d created by %s: %d sites, %d occurrence(s)", m.id, actor, len(p.site_ids), len(p.intervals)
    )
    return m


def get(session: Session, meeting_id: int) -> Meeting:
    m = session.get(Meeting, meeting_id)
    if m is None:
        raise NotFound("Không có cuộc họp {id}", field="id", id=meeting_id)
    return m


def visible(user: User, m: Meeting) -> bool:
    return user.role != UserRole.OPERATOR.value or user.site_id in m.site_ids


def get_for(session: Session, user: User, meeting_id: int) -> Meeting:
    """The meeting if ``user`` may see it (a site operator sees only meetings of their site)."""
    m = get(session, meeting_id)
    if not visible(user, m):
        raise Forbidden("Bạn không có quyền xem cuộc họp này")
    return m


def _current_input(m: Meeting) -> dict[str, Any]:
    return {
        "title": m.title,
        "agenda": m.agenda,
        "start": m.start_at,
        "end": m.end_at,
        "host_site": m.host_site_id,
        "participants": m.selectors or m.site_ids,
        "rrule": m.rrule,
        "reminder_minutes": m.reminder_minutes,
    }


def update(session: Session, settings: Settings, meeting_id: int, patch: MeetingPatch, actor: str) -> Meeting:
    m = get(session, meeting_id)
    if m.status == MeetingStatus.CANCELLED.value:
        raise InvalidInput("Cuộc họp đã bị hủy, không thể sửa", field="id")
    changes = patch.model_dump(exclude_unset=True)
    merged = {**_current_input(m), **changes}
    start_changed = "start" in changes and changes["start"] is not None and changes["start"] != m.start_at
    try:
        data = MeetingIn.model_validate(
            merged, context={"check_past": start_changed, "past_grace_s": settings.past_grace_s}
        )
    except ValidationError as exc:
        raise SchemaInvalid(exc) from None
    p = plan(session, settings, data, exclude_meeting=m.id)
    _raise_conflicts(p)
    _history(session, m, actor, "before-edit")
    m.title, m.agenda, m.rrule = data.title, data.agenda, data.rrule
    m.start_at, m.end_at = data.start.astimezone(UTC), data.end.astimezone(UTC)
    m.host_site_id, m.selectors, m.reminder_minutes = p.host, list(data.participants), data.reminder_minutes
    m.version += 1
    m.updated_at = utcnow()
    _set_participants(session, m, p)
    _set_occurrences(session, m, p.intervals)
    session.flush()
    _history(session, m, actor, "edit", {"changed": sorted(changes)})
    logger.info("meeting %d edited by %s (%s)", m.id, actor, ", ".join(sorted(changes)))
    return m


def cancel(session: Session, meeting_id: int, actor: str) -> Meeting:
    """Soft cancel: the meeting stays, with its history, marked cancelled."""
    m = get(session, meeting_id)
    if m.status != MeetingStatus.CANCELLED.value:
        m.status = MeetingStatus.CANCELLED.value
        m.version += 1
        m.updated_at = utcnow()
        _history(session, m, actor, "cancel")
        logger.info("meeting %d cancelled by %s", m.id, actor)
    return m


def edit_occurrence(
    session: Session,
    settings: Settings,
    meeting_id: int,
    occurrence_id: int,
    patch: OccurrencePatch,
    actor: str,
) -> Occurrence:
    m = get(session, meeting_id)
    occ = session.get(Occurrence, occurrence_id)
    if occ is None or occ.meeting_id != m.id:
        raise NotFound("Không có buổi họp {id}", field="occurrence", id=occurrence_id)
    if m.status == MeetingStatus.CANCELLED.value:
        raise InvalidInput("Cuộc họp đã bị hủy, không thể sửa", field="id")
    start = patch.start.astimezone(UTC) if patch.start else occ.start_at
    end = patch.end.astimezone(UTC) if patch.end else occ.end_at
    if end <= start:
        raise InvalidInput("Giờ kết thúc phải sau giờ bắt đầu", field="end")
    if end - start > conflicts.MAX_DURATION:
        raise InvalidInput("Một cuộc họp không dài quá {hours} giờ", field="end", hours=24)
    if patch.start and start != occ.start_at and start < utcnow() - timedelta(seconds=settings.past_grace_s):
        raise InvalidInput("Giờ bắt đầu đã ở trong quá khứ", field="start")
    cancelled = (
        patch.cancelled if patch.cancelled is not None else occ.status == MeetingStatus.CANCELLED.value
    )
    if not cancelled:
        found = conflicts.find(session, m.site_ids, [(start, end)], exclude_occurrence=occ.id)
        if found:
            raise Conflict(
                "Xung đột lịch: {n} điểm cầu đã có cuộc họp trùng giờ",
                [c.as_dict() for c in found],
                n=len({c.site for c in found}),
            )
    occ.start_at, occ.end_at, occ.modified = start, end, True
    occ.status = MeetingStatus.CANCELLED.value if cancelled else MeetingStatus.SCHEDULED.value
    session.flush()
    _history(
        session,
        m,
        actor,
        "edit-occurrence",
        {
            "occurrence": occ.id,
            "original_start": occ.original_start.isoformat(),
            "occurrence_start": start.isoformat(),
            "occurrence_status": occ.status,
        },
    )
    return occ


def extend_series(session: Session, settings: Settings, now: datetime | None = None) -> int:
    """Keep open-ended series materialised ``horizon_days`` ahead of today (run daily by the reminder loop).

    New occurrences of an existing series cannot be refused any more; a clash is logged for the secretariat.
    """
    now = now or utcnow()
    until = now + timedelta(days=settings.horizon_days)
    added = 0
    rows = session.scalars(
        select(Meeting).where(Meeting.rrule.is_not(None), Meeting.status == MeetingStatus.SCHEDULED.value)
    )
    for m in rows:
        last = session.scalar(
            select(func.max(Occurrence.original_start)).where(Occurrence.meeting_id == m.id)
        )
        if last is None or last >= until - timedelta(days=7):
            continue
        try:
            new = recurrence.following(
                m.start_at, m.end_at, m.rrule or "", last, until, settings.max_occurrences
            )
        except recurrence.RRuleError:
            logger.warning("meeting %d has an unusable RRULE; not extended", m.id)
            continue
        if not new:
            continue
        found = conflicts.find(session, m.site_ids, new, exclude_meeting=m.id)
        if found:
            logger.warning("meeting %d: %d new occurrence(s) clash with other meetings", m.id, len(found))
        session.add_all(Occurrence(meeting_id=m.id, original_start=s, start_at=s, end_at=e) for s, e in new)
        added += len(new)
    session.flush()
    if added:
        logger.info("extended recurring meetings by %d occurrence(s)", added)
    return added


def history(session: Session, meeting_id: int) -> list[History]:
    get(session, meeting_id)
    return list(session.scalars(select(History).where(History.meeting_id == meeting_id).order_by(History.id)))


def occurrences_between(
    session: Session,
    start: datetime,
    end: datetime,
    *,
    site_id: str | None = None,
    include_cancelled: bool = True,
    limit: int = 1000,
) -> list[tuple[Occurrence, Meeting]]:
    """Occurrences overlapping [start, end), optionally only those of one site's meetings."""
    stmt = (
        select(Occurrence, Meeting)
        .join(Meeting, Meeting.id == Occurrence.meeting_id)
        .where(Occurrence.start_at < end, Occurrence.end_at > start)
        .order_by(Occurrence.start_at, Occurrence.id)
        .limit(limit)
    )
    if site_id is not None:
        stmt = stmt.where(
            Occurrence.meeting_id.in_(select(Participant.meeting_id).where(Participant.site_id == site_id))
        )
    if not include_cancelled:
        stmt = stmt.where(
            Occurrence.status == MeetingStatus.SCHEDULED.value,
            Meeting.status == MeetingStatus.SCHEDULED.value,
        )
    return [(o, m) for o, m in session.execute(stmt).tuples()]


def meetings_of_site(session: Session, site_id: str) -> list[Meeting]:
    stmt = (
        select(Meeting)
        .join(Participant, Participant.meeting_id == Meeting.id)
        .where(Participant.site_id == site_id)
        .order_by(Meeting.start_at)
    )
    return list(session.scalars(stmt))


def all_meetings(session: Session, ids: Sequence[int] | None = None) -> list[Meeting]:
    stmt = select(Meeting).order_by(Meeting.start_at)
    if ids is not None:
        stmt = stmt.where(Meeting.id.in_(list(ids)))
    return list(session.scalars(stmt))


def status_of(occ: Occurrence, m: Meeting) -> str:
    return (
        MeetingStatus.CANCELLED.value
        if MeetingStatus.CANCELLED.value in (m.status, occ.status)
        else MeetingStatus.SCHEDULED.value
    )
