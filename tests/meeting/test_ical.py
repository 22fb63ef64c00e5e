"""iCalendar export parsed back with the icalendar package: series, cancelled/moved occurrences, site feed."""

from __future__ import annotations

from datetime import timedelta

from icalendar import Calendar

from tests.meeting.conftest import OPERATOR_SITE, Service, future, meeting_body


def test_meeting_and_site_feed(service: Service) -> None:
    h = service.h("secretariat")
    start = future(days=4)
    m = service.client.post(
        "/api/v1/meetings",
        json=meeting_body(start, rrule="FREQ=WEEKLY;COUNT=4", agenda="Báo cáo tuần"),
        headers=h,
    ).json()
    o1, o2 = m["occurrences"][1], m["occurrences"][2]
    service.client.patch(
        f"/api/v1/meetings/{m['id']}/occurrences/{o1['id']}", json={"cancelled": True}, headers=h
    )
    moved = start + timedelta(weeks=2, hours=6)
    service.client.patch(
        f"/api/v1/meetings/{m['id']}/occurrences/{o2['id']}",
        headers=h,
        json={"start": moved.isoformat(), "end": (moved + timedelta(hours=1)).isoformat()},
    )
    r = service.client.get(f"/api/v1/meetings/{m['id']}/calendar.ics", headers=service.h("engineer"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/calendar")
    cal = Calendar.from_ical(r.content)
    assert cal.walk("VTIMEZONE")
    events = cal.walk("VEVENT")
    master = next(e for e in events if "RECURRENCE-ID" not in e)
    assert str(master["SUMMARY"]) == "Giao ban tuần" and master["RRULE"]["COUNT"] == [4]
    assert master.decoded("DTSTART") == start
    exdates = (
        [d.dt for d in master["EXDATE"].dts]
        if not isinstance(master["EXDATE"], list)
        else [d.dt for x in master["EXDATE"] for d in x.dts]
    )
    assert exdates == [start + timedelta(weeks=1)]
    override = next(e for e in events if "RECURRENCE-ID" in e)
    assert override.decoded("RECURRENCE-ID") == start + timedelta(weeks=2)
    assert override.decoded("DTSTART") == moved
    assert "Xã Mường Nhé" in str(master["DESCRIPTION"])
    # the operator's own site feed has it; cancelling marks it CANCELLED there
    service.client.post(f"/api/v1/meetings/{m['id']}/cancel", headers=h)
    feed = service.client.get(f"/api/v1/sites/{OPERATOR_SITE}/calendar.ics", headers=service.h("operator"))
    assert feed.status_code == 200
    evs = Calendar.from_ical(feed.content).walk("VEVENT")
    assert evs and all(str(e["STATUS"]) == "CANCELLED" for e in evs)
    assert (
        service.client.get("/api/v1/sites/03124/calendar.ics", headers=service.h("operator")).status_code
        == 403
    )
