"""Bad input: 422 with a clear VI and EN message, and nothing stored (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from meeting.models import History, Meeting, Occurrence
from tests.meeting.conftest import Service, future, meeting_body

S = future()
CASES = {
    "end_before_start": (
        meeting_body(S, end=(S - timedelta(hours=1)).isoformat()),
        "sau giờ bắt đầu",
        "end must be after the start",
    ),
    "unknown_site": (
        meeting_body(S, participants=["99999"]),
        "Không có điểm cầu 99999",
        "Unknown site 99999",
    ),
    "unknown_host": (meeting_body(S, host_site="99999"), "Không có điểm cầu 99999", "Unknown site 99999"),
    "unknown_district": (
        meeting_body(S, participants=["district:khong-co"]),
        "district:khong-co",
        "Unknown site district:khong-co",
    ),
    "empty_participants": (meeting_body(S, participants=[]), "Cần ít nhất 1", "At least 1"),
    "only_host_as_participant": (
        meeting_body(S, participants=["11"]),
        "tham dự trống",
        "participant list is empty",
    ),
    "in_the_past": (meeting_body(future(days=-2)), "quá khứ", "in the past"),
    "long_title": (meeting_body(S, title="T" * 301), "tối đa 300 ký tự", "at most 300 characters"),
    "broken_rrule": (meeting_body(S, rrule="FREQ=SOMETIMES"), "RRULE", "RRULE"),
    "rrule_garbage": (meeting_body(S, rrule="every monday please"), "RRULE", "Invalid recurrence rule"),
    "rrule_hourly": (meeting_body(S, rrule="FREQ=HOURLY"), "FREQ", "FREQ DAILY"),
    "bad_time": ({**meeting_body(S), "start": "tomorrow 8am"}, "ISO 8601", "ISO 8601"),
    "too_long_meeting": (meeting_body(S, hours=30), "24 giờ", "24 hours"),
    "unknown_field": ({**meeting_body(S), "color": "red"}, "không được phép", "not allowed"),
    "missing_title": ({k: v for k, v in meeting_body(S).items() if k != "title"}, "Thiếu trường", "missing"),
}


def _stored(svc: Service) -> int:
    with svc.session() as s:
        return sum(
            int(s.scalar(select(func.count()).select_from(t)) or 0) for t in (Meeting, Occurrence, History)
        )


@pytest.mark.parametrize("case", sorted(CASES))
def test_rejected_with_clear_message(service: Service, case: str) -> None:
    body, vi, en = CASES[case]
    r = service.client.post("/api/v1/meetings", json=body, headers=service.h("secretariat"))
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert any(vi in d["msg_vi"] for d in detail), detail
    assert any(en in d["msg_en"] for d in detail), detail
    assert _stored(service) == 0
    # the language switch picks the main message
    r = service.client.post("/api/v1/meetings?lang=en", json=body, headers=service.h("secretariat"))
    assert any(en in d["msg"] for d in r.json()["detail"])


def test_ten_megabyte_title_is_refused_before_parsing(service: Service) -> None:
    body = meeting_body(title="x" * (10 * 1024 * 1024))
    r = service.client.post("/api/v1/meetings", json=body, headers=service.h("secretariat"))
    assert r.status_code == 422
    d = r.json()["detail"][0]
    assert d["type"] == "body_too_large" and "quá lớn" in d["msg_vi"] and "too large" in d["msg_en"]
    assert _stored(service) == 0


def test_bad_edit_is_refused_and_changes_nothing(service: Service) -> None:
    h = service.h("secretariat")
    m = service.client.post("/api/v1/meetings", json=meeting_body(), headers=h).json()
    before = _stored(service)
    for patch in (
        {"end": (future() - timedelta(hours=3)).isoformat()},
        {"participants": ["nowhere"]},
        {"rrule": "FREQ=WEEKLY;BYDAY=XX"},
        {"title": ""},
        {"start": future(days=-3).isoformat()},
    ):
        r = service.client.patch(f"/api/v1/meetings/{m['id']}", json=patch, headers=h)
        assert r.status_code == 422, (patch, r.text)
        assert r.json()["detail"][0]["msg_en"]
    assert _stored(service) == before
    assert service.client.get(f"/api/v1/meetings/{m['id']}", headers=h).json()["version"] == 1
