"""Table rows → API schemas (times shown in Vietnam local time)."""

from __future__ import annotations

from meeting.models import History, Meeting, Occurrence, User
from meeting.schemas import HistoryOut, MeetingOut, OccurrenceOut, ReadinessOut, SiteReadinessOut, UserOut
from meeting.services import meetings as svc
from meeting.services.readiness import MeetingReadiness
from meeting.services.recurrence import to_local


def occurrence_out(o: Occurrence, m: Meeting) -> OccurrenceOut:
    return OccurrenceOut(
        id=o.id,
        meeting_id=m.id,
        title=m.title,
        start=to_local(o.start_at),
        end=to_local(o.end_at),
        status=svc.status_of(o, m),
        modified=o.modified,
        host_site=m.host_site_id,
        sites=len(m.participants),
    )


def meeting_out(m: Meeting, max_occurrences: int = 500) -> MeetingOut:
    return MeetingOut(
        id=m.id,
        title=m.title,
        agenda=m.agenda,
        start=to_local(m.start_at),
        end=to_local(m.end_at),
        rrule=m.rrule,
        host_site=m.host_site_id,
        participants=m.site_ids,
        selectors=m.selectors,
        status=m.status,
        reminder_minutes=m.reminder_minutes,
        version=m.version,
        created_by=m.created_by,
        occurrences=[occurrence_out(o, m) for o in m.occurrences[:max_occurrences]],
    )


def history_out(h: History) -> HistoryOut:
    return HistoryOut(at=to_local(h.at), actor=h.actor, action=h.action, snapshot=h.snapshot)


def user_out(u: User) -> UserOut:
    return UserOut(username=u.username, role=u.role, site=u.site_id, active=u.active)


def readiness_out(r: MeetingReadiness, lang: str) -> ReadinessOut:
    return ReadinessOut(
        meeting_id=r.meeting_id,
        ready=r.ready,
        total=r.total,
        summary=r.summary(lang),
        audit_available=r.audit_available,
        sites=[
            SiteReadinessOut(
                site=s.site,
                name=s.name,
                ready=s.ready,
                reasons=[x.text(lang) for x in s.reasons],
                heartbeat_age_s=s.heartbeat_age_s,
                audit=s.audit,
            )
            for s in r.sites
        ],
    )
