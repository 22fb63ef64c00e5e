"""Attendance (điểm danh) on SQLite and PostgreSQL: spans as they happen, gaps, stale spans after a crash,
the report's minutes, and the CSV / XLSX downloads with the right rows for each role."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from meeting.models import Attendance, Meeting, utcnow
from meeting.services import attendance
from tests.meeting.conftest import Service, meeting_body


def _meeting_now(svc: Service) -> tuple[int, datetime]:
    """A meeting of district 096 (host: the province) that started 60 minutes ago and ends in 60 minutes."""
    r = svc.client.post("/api/v1/meetings", json=meeting_body(), headers=svc.h("secretariat"))
    assert r.status_code == 201, r.text
    mid = int(r.json()["id"])
    start = utcnow().replace(microsecond=0) - timedelta(minutes=60)
    with svc.session() as s:
        m = s.get(Meeting, mid)
        assert m is not None
        m.start_at, m.end_at = start, start + timedelta(hours=2)
        for o in m.occurrences:
            o.start_at, o.end_at = start, start + timedelta(hours=2)
        s.commit()
    return mid, start


def test_drop_and_rejoin_shows_the_gap_and_minutes(service: Service) -> None:
    mid, t0 = _meeting_now(service)
    with service.session() as s:
        # 03160 joins 5 min early (counts from the start), drops at +20, back at +23, leaves at +50.
        attendance.joined(s, mid, "03160", at=t0 - timedelta(minutes=5))
        attendance.seen(s, mid, "03160", {"rtt_ms": 40, "loss_pct": 0.5, "kbps": 900}, at=t0 + timedelta(minutes=10))
        attendance.seen(s, mid, "03160", {"rtt_ms": 60, "loss_pct": 2.0, "kbps": 700}, at=t0 + timedelta(minutes=19))
        attendance.left(s, mid, "03160", "dropped", at=t0 + timedelta(minutes=20))
        attendance.joined(s, mid, "03160", at=t0 + timedelta(minutes=23))
        attendance.left(s, mid, "03160", "left", at=t0 + timedelta(minutes=50))
        # The host hall is still connected.
        attendance.joined(s, mid, "11", at=t0)
        s.commit()
        rep = attendance.report(s, s.get(Meeting, mid), now=t0 + timedelta(minutes=60))  # type: ignore[arg-type]
    by = {x.site_id: x for x in rep.sites}
    c = by["03160"]
    assert c.minutes == pytest.approx(47.0)  # 0..20 and 23..50
    assert c.drops == 1 and len(c.gaps) == 1
    assert c.gaps[0] == (t0 + timedelta(minutes=20), t0 + timedelta(minutes=23))
    assert c.rtt_ms == 50.0 and c.loss_pct_max == 2.0 and c.kbps == 800.0
    assert c.last_leave == t0 + timedelta(minutes=50) and not c.connected
    host = by["11"]
    assert host.connected and host.minutes == pytest.approx(60.0) and host.role == "host"
    assert rep.sites[0].site_id == "11"  # the host first
    absent = [x for x in rep.sites if x.status == "absent"]
    assert len(absent) == len(rep.sites) - 2 and all(x.minutes == 0 for x in absent)


def test_reconnect_replaces_the_open_span_and_restart_closes_stale_ones(service: Service) -> None:
    mid, t0 = _meeting_now(service)
    with service.session() as s:
        attendance.joined(s, mid, "03158", at=t0 + timedelta(minutes=1))
        attendance.joined(s, mid, "03158", at=t0 + timedelta(minutes=2))  # agent came back before its old socket died
        attendance.joined(s, mid, "03159", at=t0 + timedelta(minutes=1))
        attendance.seen(s, mid, "03159", at=t0 + timedelta(minutes=30))
        s.commit()
    with service.session() as s:  # a new server process starts
        assert attendance.close_stale(s) == 2
        s.commit()
        spans = s.scalars(select(Attendance).where(Attendance.meeting_id == mid)
                          .order_by(Attendance.site_id, Attendance.joined_at)).all()
        assert [(x.site_id, x.reason) for x in spans] == [
            ("03158", "replaced"), ("03158", "server_restart"), ("03159", "server_restart")]
        assert spans[2].left_at == t0 + timedelta(minutes=30)  # its last sign of life, not the restart time
        rep = attendance.report(s, s.get(Meeting, mid), now=t0 + timedelta(minutes=60))  # type: ignore[arg-type]
    by = {x.site_id: x for x in rep.sites}
    assert by["03159"].minutes == pytest.approx(29.0) and by["03159"].drops == 1


def test_downloads_and_roles(service: Service) -> None:
    mid, t0 = _meeting_now(service)
    with service.session() as s:
        attendance.joined(s, mid, "03160", at=t0)
        attendance.left(s, mid, "03160", "dropped", at=t0 + timedelta(minutes=10))
        attendance.joined(s, mid, "03160", at=t0 + timedelta(minutes=12))
        attendance.joined(s, mid, "03158", at=t0 + timedelta(minutes=5))
        s.commit()
    url = f"/api/v1/meetings/{mid}/attendance"
    doc = service.client.get(url, headers=service.h("engineer")).json()
    assert doc["invited"] == 12 and doc["present"] == 2
    row = next(x for x in doc["sites"] if x["site"] == "03160")
    assert row["drops"] == 1 and len(row["gaps"]) == 1 and row["gaps"][0]["minutes"] == 2.0
    assert row["name"] and row["connected"] is True

    r = service.client.get(url + ".csv", headers=service.h("secretariat"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith(b"\xef\xbb\xbf") and "attachment" in r.headers["content-disposition"]
    table = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert table[0][:4] == ["Mã", "Điểm cầu", "Vai trò", "Trạng thái"]
    assert len(table) == 1 + 12
    rows = {x[0]: x for x in table[1:]}
    assert rows["03160"][3] == "Có mặt" and rows["03160"][7] == "1" and rows["03157"][3] == "Vắng"

    r = service.client.get(url + ".xlsx?lang=en", headers=service.h("admin"))
    assert r.status_code == 200
    ws = load_workbook(io.BytesIO(r.content)).active
    assert ws is not None
    values = [[c.value for c in row] for row in ws.iter_rows()]
    header = values.index(attendance.CSV_HEADER["en"])
    body = {v[0]: v for v in values[header + 1:]}
    assert len(body) == 12 and body["03158"][3] == "Present" and body["03157"][3] == "Absent"

    # The meeting page shows the table and the download links (Vietnamese first, English on request).
    page = service.client.get(f"/meetings/{mid}", headers=service.h("secretariat"))
    assert page.status_code == 200 and 'id="attendance"' in page.text and "Điểm danh — 2/12" in page.text
    assert f"/api/v1/meetings/{mid}/attendance.xlsx" in page.text
    service.client.get("/lang/en", follow_redirects=False)  # the page's language switch (a cookie)
    try:
        en = service.client.get(f"/meetings/{mid}", headers=service.h("secretariat"))
        assert "Attendance — 2/12" in en.text and "Minutes present" in en.text
    finally:
        service.client.get("/lang/vi", follow_redirects=False)

    # A site operator sees only their own site; anonymous is refused; an unknown occurrence is a clear 422.
    op = service.client.get(url, headers=service.h("operator")).json()
    assert [x["site"] for x in op["sites"]] == ["03160"]
    assert service.client.get(url + ".csv").status_code == 401
    bad = service.client.get(url + "?occurrence=999999", headers=service.h("admin"))
    assert bad.status_code == 422 and "999999" in bad.text


def test_unknown_reason_is_refused(service: Service) -> None:
    mid, _ = _meeting_now(service)
    with service.session() as s, pytest.raises(ValueError, match="reason"):
        attendance.left(s, mid, "03160", "vanished")
