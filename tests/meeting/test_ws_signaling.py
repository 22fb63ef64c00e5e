"""The signaling WebSocket's door: who gets in (session, join token) and every refusal's code, reason and log line.

No media here (the WebSocket alone, through the app's real stack, SQLite and PostgreSQL); media through the same
socket is tests/media/test_ws_media.py.
"""

from __future__ import annotations

import itertools
import logging
from datetime import datetime, timedelta
from typing import Any

import pytest
from starlette.websockets import WebSocketDisconnect

from meeting.api.routes.ws import CLOSE_CODES, REASONS
from meeting.i18n import translate
from meeting.models import User
from meeting.services import auth
from meeting.services.recurrence import TZ
from tests.meeting.conftest import OPERATOR_SITE, Service, future, meeting_body

OTHER_SITE = "03124"  # a commune of another district: not in meeting_body()'s participants


_DAY = itertools.count(30)


def _meeting(svc: Service, start: datetime | None = None, **over: Any) -> dict[str, Any]:
    """A meeting on a day of its own (the host hall cannot be in two meetings at once)."""
    body = meeting_body(start or future(days=next(_DAY)), **over)
    r = svc.client.post("/api/v1/meetings", json=body, headers=svc.h("secretariat"))
    assert r.status_code == 201, r.text
    doc: dict[str, Any] = r.json()
    return doc


def _site_token(svc: Service, site: str) -> str:
    with svc.session() as s:
        token = auth.issue_site_token(s, site)
        s.commit()
    return token


def _join_token(svc: Service, site_token: str, meeting_id: int) -> str:
    r = svc.client.post(f"/api/v1/meetings/{meeting_id}/join-token", headers={"Authorization": f"Bearer {site_token}"})
    assert r.status_code == 200, r.text
    token: str = r.json()["token"]
    return token


def _cookie(svc: Service, username: str) -> str:
    with svc.session() as s:
        user = s.query(User).filter_by(username=username).one()
        cookie = auth.start_session(s, svc.settings, user).cookie
        s.commit()
    return cookie


def _join(svc: Service, meeting_id: int, *, token: str | None = None, cookie: str | None = None,
          first: Any = None, origin: str | None = None) -> dict[str, Any]:
    """Open the socket, authenticate, return the welcome (or raise the refusal as (code, error message))."""
    headers = {}
    if cookie:
        headers["cookie"] = f"lt_session={cookie}"
    if origin:
        headers["origin"] = origin
    with svc.client.websocket_connect(f"/ws/meetings/{meeting_id}", headers=headers) as ws:
        if token is not None:
            ws.send_json({"type": "auth", "token": token})
        elif first is not None:
            ws.send_text(first)
        msg: dict[str, Any] = ws.receive_json()
        if msg["type"] == "error":
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_json()
            raise Refusal(closed.value.code, closed.value.reason, msg)
        ws.send_json({"type": "ping"})
        assert ws.receive_json() == {"type": "pong"}
        return msg


class Refusal(Exception):
    def __init__(self, code: int, reason: str, message: dict[str, Any]) -> None:
        super().__init__(code, reason)
        self.code, self.reason, self.message = code, reason, message


def _refused(svc: Service, meeting_id: int, want: str, **kw: Any) -> Refusal:
    with pytest.raises(Refusal) as r:
        _join(svc, meeting_id, **kw)
    assert (r.value.code, r.value.reason) == (CLOSE_CODES[want], want)
    assert r.value.message["code"] == want
    assert r.value.message["reason"] == REASONS[want]
    assert r.value.message["reason_en"] == translate(REASONS[want], "en") != REASONS[want]
    return r.value


def test_join_token_lets_an_invited_site_in(service: Service) -> None:
    m = _meeting(service)
    token = _join_token(service, _site_token(service, OPERATOR_SITE), m["id"])
    welcome = _join(service, m["id"], token=token)
    assert welcome == {"type": "welcome", "protocol": 1, "room": str(m["id"]), "site": OPERATOR_SITE, "host": False}


def test_the_host_sites_agent_is_the_host_hall(service: Service) -> None:
    m = _meeting(service)
    token = _join_token(service, _site_token(service, "11"), m["id"])
    assert _join(service, m["id"], token=token)["host"] is True


def test_page_sessions(service: Service) -> None:
    m = _meeting(service)
    for user in ("admin", "secretariat"):  # the host console
        assert _join(service, m["id"], cookie=_cookie(service, user))["site"] == "11"
    operator = _join(service, m["id"], cookie=_cookie(service, "operator"))
    assert (operator["site"], operator["host"]) == (OPERATOR_SITE, False)
    _refused(service, m["id"], "forbidden_role", cookie=_cookie(service, "engineer"))
    _refused(service, m["id"], "bad_origin", cookie=_cookie(service, "admin"), origin="http://evil.example")
    assert _join(service, m["id"], cookie=_cookie(service, "admin"), origin="http://testserver")["host"]
    _refused(service, m["id"], "not_authenticated", cookie="not-a-session")


def test_refusals_are_clear_and_logged_without_the_token(service: Service, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    m = _meeting(service)
    other = _meeting(service, participants=[OTHER_SITE])
    site_token = _site_token(service, OPERATOR_SITE)
    token = _join_token(service, site_token, m["id"])
    secrets_seen = [token, site_token]

    _refused(service, other["id"], "wrong_meeting", token=token)
    _refused(service, m["id"], "invalid_token", token=token[:-4] + "AAAA")
    _refused(service, m["id"], "bad_request", first="hello")
    _refused(service, 999999, "meeting_not_found", token=token)
    with service.session() as s:
        expired, _ = auth.make_join_token(auth.signing_key(s), m["id"], OPERATOR_SITE, -5)
        s.commit()
    secrets_seen.append(expired)
    _refused(service, m["id"], "expired_token", token=expired)

    # the site is taken out of the meeting after it got its token
    r = service.client.patch(f"/api/v1/meetings/{m['id']}", json={"participants": ["03124"]},
                             headers=service.h("secretariat"))
    assert r.status_code == 200, r.text
    _refused(service, m["id"], "not_invited", token=token)

    # a cancelled meeting
    m2 = _meeting(service)
    token2 = _join_token(service, site_token, m2["id"])
    secrets_seen.append(token2)
    assert service.client.post(f"/api/v1/meetings/{m2['id']}/cancel", headers=service.h("secretariat")).status_code \
        == 200
    _refused(service, m2["id"], "meeting_cancelled", token=token2)

    # the site token is revoked after the join token was issued
    m3 = _meeting(service)
    token3 = _join_token(service, site_token, m3["id"])
    secrets_seen.append(token3)
    assert _join(service, m3["id"], token=token3)["site"] == OPERATOR_SITE
    r = service.client.delete(f"/api/v1/sites/{OPERATOR_SITE}/token", headers=service.h("admin"))
    assert r.status_code == 200, r.text
    _refused(service, m3["id"], "site_token_revoked", token=token3)
    # … and a new site token does not revive join tokens issued under the old one
    _site_token(service, OPERATOR_SITE)
    _refused(service, m3["id"], "site_token_revoked", token=token3)

    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    for code in ("wrong_meeting", "invalid_token", "expired_token", "not_invited", "meeting_cancelled",
                 "site_token_revoked", "meeting_not_found", "bad_request"):
        assert any(code in line for line in refusals), code
    assert any(f"site {OPERATOR_SITE}" in line for line in refusals)
    text = "\n".join(r.getMessage() for r in caplog.records)
    for secret in secrets_seen:
        assert secret not in text


def test_a_reconnecting_site_replaces_its_previous_session(service: Service) -> None:
    m = _meeting(service)
    site_token = _site_token(service, OPERATOR_SITE)
    with service.client.websocket_connect(f"/ws/meetings/{m['id']}") as first:
        first.send_json({"type": "auth", "token": _join_token(service, site_token, m["id"])})
        assert first.receive_json()["type"] == "welcome"
        with service.client.websocket_connect(f"/ws/meetings/{m['id']}") as second:
            second.send_json({"type": "auth", "token": _join_token(service, site_token, m["id"])})
            assert second.receive_json()["type"] == "welcome"
            assert first.receive_json()["code"] == "replaced"
            with pytest.raises(WebSocketDisconnect) as closed:
                first.receive_json()
            assert closed.value.code == CLOSE_CODES["replaced"]
            second.send_json({"type": "ping"})
            assert second.receive_json() == {"type": "pong"}


def test_signaling_errors_after_joining_are_bilingual(service: Service) -> None:
    m = _meeting(service)
    token = _join_token(service, _site_token(service, OPERATOR_SITE), m["id"])
    with service.client.websocket_connect(f"/ws/meetings/{m['id']}") as ws:
        ws.send_json({"type": "auth", "token": token})
        ws.receive_json()
        ws.send_text("not json")
        err = ws.receive_json()
        assert err["type"] == "error" and err["reason_en"] == "A message must be a JSON object with a 'type' field"
        ws.send_json({"type": "floor", "action": "revoke"})  # only the host may
        err = ws.receive_json()
        assert err["reason_en"] == "Only the host hall may grant or revoke the floor"


def test_agent_schedule_lists_the_sites_meetings(service: Service) -> None:
    soon = datetime.now(TZ).replace(microsecond=0) + timedelta(hours=1)
    m = _meeting(service, soon)
    _meeting(service, soon + timedelta(hours=3), participants=[OTHER_SITE])
    _meeting(service)  # in 30+ days: beyond the agent's 7-day window
    site_token = _site_token(service, OPERATOR_SITE)
    r = service.client.get("/api/v1/agents/meetings", headers={"Authorization": f"Bearer {site_token}"})
    assert r.status_code == 200
    assert [d["meeting_id"] for d in r.json()] == [m["id"]]
    assert r.json()[0]["host"] is False
    assert service.client.get("/api/v1/agents/meetings", headers=service.h("admin")).status_code == 401
