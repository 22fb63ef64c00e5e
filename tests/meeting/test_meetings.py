"""Meetings over HTTP on SQLite and PostgreSQL: create, conflicts, recurrence, cancel, history."""

from __future__ import annotations

import itertools
from datetime import timedelta

from sqlalchemy import func, select

from meeting.models import History, Meeting, Occurrence
from tests.meeting.conftest import Service, future, meeting_body


def _count(svc: Service) -> int:
    with svc.session() as s:
        return int(s.scalar(select(func.count()).select_from(Meeting)) or 0)


def test_create_for_all_communes_of_a_district(service: Service) -> None:
    r = service.client.post("/api/v1/meetings", json=meeting_body(), headers=service.h("secretariat"))
    assert r.status_code == 201, r.text
    m = r.json()
    # district 096 Mường Nhé has 11 communes; the host room (province, 11) joins too.
    assert len(m["participants"]) == 12 and "11" in m["participants"] and "096" not in m["participants"]
    assert m["start"].endswith("+07:00")
    got = service.client.get(f"/api/v1/meetings/{m['id']}", headers=service.h("engineer")).json()
    assert got["title"] == "Giao ban tuần" and len(got["occurrences"]) == 1


def test_conflict_same_site_and_host_room(service: Service) -> None:
    h = service.h("secretariat")
    start = future()
    assert service.client.post("/api/v1/meetings", json=meeting_body(start), headers=h).status_code == 201
    # one commune of that district, overlapping by 30 minutes
    r = service.client.post(
        "/api/v1/meetings",
        json=meeting_body(start + timedelta(minutes=90), host_site="094", participants=["03160"]),
        headers=h,
    )
    assert r.status_code == 409
    body = r.json()
    assert {c["site"] for c in body["conflicts"]} == {"03160"}
    assert "Xung đột" in body["detail"][0]["msg_vi"] and "conflict" in body["detail"][0]["msg_en"]
    # the host room alone: another district, same host (province) at the same time
    r = service.client.post(
        "/api/v1/meetings", json=meeting_body(start, participants=["district:097"]), headers=h
    )
    assert r.status_code == 409 and {c["site"] for c in r.json()["conflicts"]} == {"11"}
    # back to back is not a conflict
    r = service.client.post("/api/v1/meetings", json=meeting_body(start + timedelta(hours=2)), headers=h)
    assert r.status_code == 201, r.text
    assert _count(service) == 2


def test_check_endpoint_stores_nothing(service: Service) -> None:
    h = service.h("secretariat")
    assert service.client.post("/api/v1/meetings", json=meeting_body(), headers=h).status_code == 201
    r = service.client.post(
        "/api/v1/meetings/check", json=meeting_body(participants=["level:commune"]), headers=h
    )
    assert r.status_code == 200
    doc = r.json()
    assert doc["ok"] is False and doc["sites"] == 130 and doc["total_conflicts"] == 12
    assert _count(service) == 1


def test_weekly_recurrence_conflicts_with_one_off(service: Service) -> None:
    h = service.h("secretariat")
    start = future(days=10)
    r = service.client.post(
        "/api/v1/meetings", json=meeting_body(start, rrule="FREQ=WEEKLY;COUNT=8"), headers=h
    )
    assert r.status_code == 201, r.text
    occs = r.json()["occurrences"]
    assert len(occs) == 8
    assert [o["start"][11:16] for o in occs] == ["08:00"] * 8  # local wall-clock time kept
    third = start + timedelta(weeks=3)
    one_off = meeting_body(third + timedelta(hours=1), host_site="094", participants=["03158"])
    r = service.client.post("/api/v1/meetings", json=one_off, headers=h)
    assert r.status_code == 409
    # move that one occurrence of the series out of the way: the one-off then fits
    occ = occs[3]
    r = service.client.patch(
        f"/api/v1/meetings/{occs[3]['meeting_id']}/occurrences/{occ['id']}",
        headers=h,
        json={
            "start": (third + timedelta(hours=5)).isoformat(),
            "end": (third + timedelta(hours=7)).isoformat(),
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["modified"] is True
    assert service.client.post("/api/v1/meetings", json=one_off, headers=h).status_code == 201


def test_cancel_one_occurrence_and_whole_meeting_soft(service: Service) -> None:
    h = service.h("secretariat")
    start = future(days=5)
    m = service.client.post(
        "/api/v1/meetings", json=meeting_body(start, rrule="FREQ=DAILY;COUNT=3"), headers=h
    ).json()
    occ = m["occurrences"][1]
    r = service.client.patch(
        f"/api/v1/meetings/{m['id']}/occurrences/{occ['id']}", json={"cancelled": True}, headers=h
    )
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    # the freed slot takes another meeting with the same sites
    day2 = start + timedelta(days=1)
    assert service.client.post("/api/v1/meetings", json=meeting_body(day2), headers=h).status_code == 201
    r = service.client.post(f"/api/v1/meetings/{m['id']}/cancel", headers=h)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    # still there, with its history; its slots are free again
    assert service.client.get(f"/api/v1/meetings/{m['id']}", headers=h).json()["status"] == "cancelled"
    assert service.client.post("/api/v1/meetings", json=meeting_body(start), headers=h).status_code == 201
    hist = service.client.get(f"/api/v1/meetings/{m['id']}/history", headers=h).json()
    assert [x["action"] for x in hist] == ["create", "edit-occurrence", "cancel"]
    assert (
        service.client.patch(f"/api/v1/meetings/{m['id']}", json={"title": "x"}, headers=h).status_code == 422
    )


def test_edit_keeps_history_and_checks_conflicts(service: Service) -> None:
    h = service.h("secretariat")
    start = future(days=7)
    a = service.client.post("/api/v1/meetings", json=meeting_body(start), headers=h).json()
    b = service.client.post(
        "/api/v1/meetings", json=meeting_body(start + timedelta(hours=3)), headers=h
    ).json()
    r = service.client.patch(
        f"/api/v1/meetings/{b['id']}",
        json={
            "start": (start + timedelta(hours=1)).isoformat(),
            "end": (start + timedelta(hours=4)).isoformat(),
        },
        headers=h,
    )
    assert r.status_code == 409
    r = service.client.patch(
        f"/api/v1/meetings/{a['id']}",
        json={"title": "Giao ban tháng", "participants": ["district:097"]},
        headers=h,
    )
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2 and "03160" not in r.json()["participants"]
    with service.session() as s:
        rows = list(s.scalars(select(History).where(History.meeting_id == a["id"]).order_by(History.id)))
    assert [x.action for x in rows] == ["create", "before-edit", "edit"]
    assert rows[1].snapshot["title"] == "Giao ban tuần" and rows[2].snapshot["title"] == "Giao ban tháng"


def test_series_edit_keeps_modified_occurrences(service: Service) -> None:
    h = service.h("secretariat")
    start = future(days=3)
    m = service.client.post(
        "/api/v1/meetings", json=meeting_body(start, rrule="FREQ=WEEKLY;COUNT=4"), headers=h
    ).json()
    occ = m["occurrences"][2]
    service.client.patch(
        f"/api/v1/meetings/{m['id']}/occurrences/{occ['id']}", json={"cancelled": True}, headers=h
    )
    r = service.client.patch(f"/api/v1/meetings/{m['id']}", json={"rrule": "FREQ=WEEKLY;COUNT=6"}, headers=h)
    assert r.status_code == 200, r.text
    with service.session() as s:
        occs = list(
            s.scalars(
                select(Occurrence).where(Occurrence.meeting_id == m["id"]).order_by(Occurrence.original_start)
            )
        )
    assert (
        len(occs) == 6 and [o.status for o in occs].count("cancelled") == 1 and occs[2].status == "cancelled"
    )


def test_operator_sees_only_own_meetings(service: Service) -> None:
    h = service.h("secretariat")
    mine = service.client.post("/api/v1/meetings", json=meeting_body(), headers=h).json()
    other = service.client.post(
        "/api/v1/meetings", json=meeting_body(participants=["district:097"], host_site="094"), headers=h
    ).json()
    op = service.h("operator")
    listed = {
        o["meeting_id"]
        for o in service.client.get(
            "/api/v1/meetings", headers=op, params={"to": future(days=40).isoformat()}
        ).json()
    }
    assert listed == {mine["id"]}
    assert service.client.get(f"/api/v1/meetings/{other['id']}", headers=op).status_code == 403
    assert service.client.get(f"/api/v1/meetings/{mine['id']}", headers=op).status_code == 200


def test_open_ended_series_is_extended(service: Service) -> None:
    from meeting.models import utcnow
    from meeting.services import meetings as svc

    h = service.h("secretariat")
    start = future(days=2)
    m = service.client.post(
        "/api/v1/meetings", json=meeting_body(start, rrule="FREQ=WEEKLY;BYDAY=MO"), headers=h
    ).json()
    first = len(m["occurrences"])
    assert 52 <= first <= 54  # one year ahead
    with service.session() as s:
        assert svc.extend_series(s, service.settings) == 0  # nothing due yet
        added = svc.extend_series(s, service.settings, now=utcnow() + timedelta(days=100))
        s.commit()
        assert 13 <= added <= 15
        assert svc.extend_series(s, service.settings, now=utcnow() + timedelta(days=100)) == 0
        total = s.scalar(select(func.count()).select_from(Occurrence).where(Occurrence.meeting_id == m["id"]))
        starts = list(
            s.scalars(
                select(Occurrence.start_at)
                .where(Occurrence.meeting_id == m["id"])
                .order_by(Occurrence.start_at)
            )
        )
    assert total == first + added
    # DTSTART is the first occurrence whatever its weekday; from the first Monday on, one a week, no gap
    assert all((b - a) == timedelta(weeks=1) for a, b in itertools.pairwise(starts[1:]))
