"""iCalendar export (RFC 5545, the ``icalendar`` package): per meeting and a feed per site.

A series is one VEVENT with its RRULE; cancelled single occurrences become EXDATEs and moved ones their own
VEVENT with RECURRENCE-ID, so calendar clients show exactly what the service has.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from icalendar import Calendar, Event, vRecur
from sqlalchemy.orm import Session

from meeting.models import Meeting, MeetingStatus, Site
from meeting.services import meetings as svc
from meeting.services import sites as site_svc
from meeting.services.recurrence import TZ

logger = logging.getLogger(__name__)

PRODID = "-//Lien Thong//meeting//VI"


def _calendar(name: str) -> Calendar:
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", name)
    cal.add("x-wr-timezone", str(TZ))
    return cal


def _uid(m: Meeting) -> str:
    return f"meeting-{m.id}@lienthong"


def _event(m: Meeting, start: datetime, end: datetime, names: dict[str, str]) -> Event:
    ev = Event()
    ev.add("uid", _uid(m))
    ev.add("dtstamp", m.updated_at.astimezone(UTC))
    ev.add("sequence", m.version)
    ev.add("summary", m.title)
    ev.add("dtstart", start.astimezone(TZ))
    ev.add("dtend", end.astimezone(TZ))
    ev.add("location", names.get(m.host_site_id, m.host_site_id))
    sites_text = ", ".join(names.get(s, s) for s in m.site_ids)
    ev.add("description", (m.agenda + "\n\n" if m.agenda else "") + f"Điểm cầu / Sites: {sites_text}")
    ev.add("status", "CANCELLED" if m.status == MeetingStatus.CANCELLED.value else "CONFIRMED")
    return ev


def _add_meeting(cal: Calendar, session: Session, m: Meeting) -> None:
    names = site_svc.names(session, m.site_ids)
    master = _event(m, m.start_at, m.end_at, names)
    if m.rrule:
        master.add("rrule", vRecur.from_ical(m.rrule))
        for o in m.occurrences:
            if o.status == MeetingStatus.CANCELLED.value:
                master.add("exdate", o.original_start.astimezone(TZ))
    cal.add_component(master)
    if not m.rrule:
        return
    for o in m.occurrences:
        if o.modified and o.status != MeetingStatus.CANCELLED.value:
            ev = _event(m, o.start_at, o.end_at, names)
            ev.add("recurrence-id", o.original_start.astimezone(TZ))
            cal.add_component(ev)


def meeting_calendar(session: Session, m: Meeting) -> bytes:
    cal = _calendar(m.title)
    _add_meeting(cal, session, m)
    cal.add_missing_timezones()
    return bytes(cal.to_ical())


def site_feed(session: Session, site: Site) -> bytes:
    """Every meeting the site takes part in (cancelled ones included, marked CANCELLED)."""
    cal = _calendar(f"Lịch họp — {site.full_name}")
    for m in svc.meetings_of_site(session, site.id):
        _add_meeting(cal, session, m)
    cal.add_missing_timezones()
    return bytes(cal.to_ical())
