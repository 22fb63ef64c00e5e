"""Server-rendered pages over HTTP with a cookie session: Vietnamese first, English, CSRF forms."""

from __future__ import annotations

import asyncio
import re

from meeting.services import auth
from meeting.services.reminders import ReminderScheduler
from tests.meeting.conftest import OPERATOR_SITE, PASSWORD, Service, future, meeting_body


def _login(svc: Service, username: str) -> str:
    page = svc.client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    r = svc.client.post(
        "/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token.group(1), "next": "/"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = svc.client.get("/site")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf
    return csrf.group(1)


def test_secretariat_edits_and_cancels_through_forms(service: Service) -> None:
    m = service.client.post("/api/v1/meetings", json=meeting_body(), headers=service.h("secretariat")).json()
    csrf = _login(service, "secretariat")
    c = service.client
    form = c.get(f"/meetings/{m['id']}/edit")
    assert form.status_code == 200 and 'value="Giao ban tuần"' in form.text
    assert 'id="sel-district-096" checked' in form.text
    day = future().date().isoformat()
    data = {
        "csrf_token": csrf,
        "title": "Giao ban đã sửa",
        "date": day,
        "start_time": "13:00",
        "end_time": "15:00",
        "host_site": "11",
        "participants": ["district:096"],
    }
    # without the CSRF token the form is refused
    assert (
        c.post(
            f"/meetings/{m['id']}/edit", data={**data, "csrf_token": "x"}, follow_redirects=False
        ).status_code
        == 403
    )
    r = c.post(f"/meetings/{m['id']}/edit", data=data, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/meetings/{m['id']}"
    page = c.get(f"/meetings/{m['id']}").text
    assert "Giao ban đã sửa" in page and "13:00" in page
    # a form error is shown in Vietnamese, next to the field name
    bad = c.post(f"/meetings/{m['id']}/edit", data={**data, "end_time": "12:00"})
    assert bad.status_code == 422 and "Giờ kết thúc phải sau giờ bắt đầu" in bad.text
    assert (
        c.post(f"/meetings/{m['id']}/cancel", data={"csrf_token": csrf}, follow_redirects=False).status_code
        == 303
    )
    assert "Cuộc họp đã bị hủy" in c.get(f"/meetings/{m['id']}").text


def test_operator_page_and_english(service: Service) -> None:
    m = service.client.post(
        "/api/v1/meetings", json=meeting_body(future(days=1, hour=9)), headers=service.h("secretariat")
    ).json()
    with service.session() as s:
        tok = auth.issue_site_token(s, OPERATOR_SITE)
        s.commit()
    service.client.post("/api/v1/agents/heartbeat", json={}, headers={"Authorization": f"Bearer {tok}"})
    _login(service, "operator")
    c = service.client
    r = c.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/site"
    page = c.get("/site").text
    assert "Xã Mường Nhé" in page and "trực tuyến" in page and m["title"] in page
    assert c.get("/site?site=03124").status_code == 403
    c.get("/lang/en?next=/site")
    page = c.get("/site").text
    assert "online" in page and "Upcoming meetings" in page and "Log out" in page
    assert "Đăng xuất" not in page


def test_reminder_scheduler_start_stop(service: Service) -> None:
    async def go() -> None:
        from dataclasses import replace

        sched = ReminderScheduler(
            service.client.app.state.sessions,  # type: ignore[attr-defined]
            replace(service.settings, reminder_interval_s=0.05),
        )
        await sched.start()
        await asyncio.sleep(0.2)
        await sched.stop()
        await sched.stop()  # idempotent

    asyncio.run(go())


def test_junk_form_input_gives_a_form_error_not_a_crash(service: Service) -> None:
    csrf = _login(service, "secretariat")
    base = {
        "csrf_token": csrf,
        "title": "Họp",
        "date": future().date().isoformat(),
        "start_time": "08:00",
        "end_time": "09:00",
        "host_site": "11",
        "participants": ["district:096"],
    }
    junk = [
        {"date": ""},
        {"date": "31/12/2030"},
        {"start_time": "25:99"},
        {"reminder_minutes": "abc"},
        {"host_site": ""},
        {"host_site": "x" * 50},
        {"participants": []},
        {"participants": ["nowhere"]},
        {"rrule": "FREQ=WEEKLY;BYDAY=ZZ"},
        {"title": ""},
        {"title": "\x00"},
        {"date": "9999-12-31"},
        {"rrule": "FREQ=DAILY;UNTIL=garbage"},
    ]
    for change in junk:
        r = service.client.post("/meetings/new", data={**base, **change})
        assert r.status_code == 422, (change, r.status_code)
        assert 'id="form-errors"' in r.text, change
