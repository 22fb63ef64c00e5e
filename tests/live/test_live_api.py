"""The live-control API without media: roles, validation, the event log, join_now, refusals at the socket, and the
state rebuilt from the events by a new server process (SQLite and PostgreSQL).

Media through the same paths (floor, mute, rehearsal with real agents) is tests/live/test_live_netns.py.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from meeting.api.app import create_app
from meeting.api.routes.ws import CLOSE_CODES
from meeting.models import MeetingEvent
from tests.meeting.conftest import OPERATOR_SITE, Service, future
from tests.meeting.test_ws_signaling import Refusal, _join, _join_token, _meeting, _site_token

HOST = "11"
OTHER = "03163"  # another commune of Mường Nhé (district 096), invited by meeting_body()


def _rows(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["site"]: r for r in doc["sites"]}


def _post(svc: Service, path: str, role: str, body: Any = None, expect: int = 200) -> Any:
    r = svc.client.post(path, json=body if body is not None else {}, headers=svc.h(role))
    assert r.status_code == expect, (path, role, r.status_code, r.text)
    return r.json()


def test_document_and_roles(service: Service) -> None:
    m = _meeting(service)
    base = f"/api/v1/meetings/{m['id']}"
    r = service.client.get(f"{base}/live", headers=service.h("secretariat"))
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["meeting"] == m["id"] and doc["state"] == "idle" and doc["floor"] is None and doc["host_site"] == HOST
    assert doc["occurrence"] is not None
    rows = _rows(doc)
    assert set(rows) == {HOST, *m["sites"]} if "sites" in m else len(rows) > 3
    assert rows[HOST]["host"] is True and rows[OPERATOR_SITE]["host"] is False
    assert rows[OPERATOR_SITE] | {"name": "", "district": ""} == {
        "site": OPERATOR_SITE, "name": "", "district": "", "state": "invited", "since": None, "hand": False,
        "muted": False, "host": False, "rehearsal": None,
        "stats": {"rtt_ms": None, "loss_pct": None, "bitrate_kbps": None}}
    assert rows[OPERATOR_SITE]["name"].startswith("Xã") and rows[OPERATOR_SITE]["district"] == "Huyện Mường Nhé"

    # an operator reads only their own row and may raise only their own hand; every action is 403 for them
    op = service.client.get(f"{base}/live", headers=service.h("operator")).json()
    assert [r["site"] for r in op["sites"]] == [OPERATOR_SITE]
    doc = _post(service, f"{base}/hand", "operator", {"site": OPERATOR_SITE, "raised": True})
    assert _rows(doc)[OPERATOR_SITE]["hand"] is True
    _post(service, f"{base}/hand", "operator", {"site": OTHER, "raised": True}, expect=403)
    for path, body in ((f"{base}/floor", {"site": OPERATOR_SITE}), (f"{base}/live/start", {}),
                       (f"{base}/live/stop", {}), (f"{base}/live/rehearsal", {"seconds": 5}),
                       (f"{base}/mute", {"site": None, "muted": True}), (f"{base}/sites/{OTHER}/remove", {})):
        err = _post(service, path, "operator", body, expect=403)
        assert err["detail"][0]["type"] == "Forbidden", err
        _post(service, path, "engineer", body, expect=403)
    assert service.client.delete(f"{base}/floor", headers=service.h("operator")).status_code == 403
    assert service.client.get(f"{base}/live").status_code == 401

    # clear errors: unknown site, the floor to a site that is not connected, bad rehearsal length, the host hall
    _post(service, f"{base}/mute", "secretariat", {"site": "03124", "muted": True}, expect=422)
    err = _post(service, f"{base}/floor", "secretariat", {"site": OTHER}, expect=409)
    assert err["detail"][0]["type"] == "LiveError" and OTHER in err["detail"][0]["msg"]
    _post(service, f"{base}/live/rehearsal", "admin", {"seconds": 0}, expect=422)
    _post(service, f"{base}/sites/{HOST}/remove", "admin", expect=422)

    # the event log: operators see only their site's events
    events = service.client.get(f"{base}/events", headers=service.h("admin")).json()
    assert [(e["action"], e["site"], e["actor"]) for e in events] == [("hand_raised", OPERATOR_SITE, "operator")]
    assert service.client.get(f"{base}/events", headers=service.h("operator")).json() == events


def test_state_survives_a_restart_and_refuses_removed_sites(service: Service) -> None:
    m = _meeting(service, start=future(days=3))  # within the agents' 7-day schedule
    base = f"/api/v1/meetings/{m['id']}"
    site_token = _site_token(service, OTHER)

    def schedule() -> dict[str, Any]:
        r = service.client.get("/api/v1/agents/meetings", headers={"Authorization": f"Bearer {site_token}"})
        assert r.status_code == 200, r.text
        return next(x for x in r.json() if x["meeting_id"] == m["id"])

    assert schedule()["join_now"] is False  # three days ahead
    doc = _post(service, f"{base}/live/rehearsal", "secretariat", {"seconds": 3})
    assert doc["state"] == "rehearsal" and schedule()["join_now"] is True
    assert _post(service, f"{base}/live/start", "secretariat")["state"] == "live"
    doc = _post(service, f"{base}/mute", "secretariat", {"site": None, "muted": True})
    assert all(r["muted"] is not r["host"] for r in doc["sites"])
    doc = _post(service, f"{base}/mute", "secretariat", {"site": OPERATOR_SITE, "muted": False})
    _post(service, f"{base}/hand", "operator", {"site": OPERATOR_SITE, "raised": True})
    doc = _post(service, f"{base}/sites/{OTHER}/remove", "admin")
    assert _rows(doc)[OTHER]["state"] == "removed"

    # the removed site cannot come back into this occurrence: error "removed" + 4412
    try:
        _join(service, m["id"], token=_join_token(service, site_token, m["id"]))
        raise AssertionError("a removed site got in")
    except Refusal as refused:
        assert refused.code == CLOSE_CODES["removed"] == 4412 and refused.message["code"] == "removed"

    # a new server process on the same database: the state comes back from the events alone
    before = service.client.get(f"{base}/live", headers=service.h("admin")).json()
    with TestClient(create_app(service.settings)) as again:
        after = again.get(f"{base}/live", headers=service.h("admin")).json()
        assert after["state"] == "live"
        assert {r["site"]: (r["muted"], r["hand"], r["state"] == "removed") for r in after["sites"]} == {
            r["site"]: (r["muted"], r["hand"], r["state"] == "removed") for r in before["sites"]}
        assert _rows(after)[OPERATOR_SITE]["muted"] is False and _rows(after)[OPERATOR_SITE]["hand"] is True
        r = again.post(f"{base}/live/stop", headers=service.h("admin"))
        assert r.status_code == 200 and r.json()["state"] == "ended"

    with service.session() as s:
        actions = [e.action for e in s.scalars(select(MeetingEvent).where(MeetingEvent.meeting_id == m["id"])
                                               .order_by(MeetingEvent.id))]
    assert actions[:3] == ["rehearsal", "start", "mute"] and actions[-2:] == ["remove", "stop"]
    assert "unmute" in actions and "hand_raised" in actions
