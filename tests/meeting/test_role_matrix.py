"""Every route × every role × anonymous: the access policy is explicit and proven (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from meeting.api.routes import agents, attendance, health, live, meetings, recordings, sites, turn, users, wall, ws
from meeting.services import auth
from meeting.web import pages, participant
from tests.meeting.conftest import OPERATOR_SITE, ROLES, Service, future, meeting_body

ALL = set(ROLES)
SCHED = {"admin", "secretariat"}
PUBLIC = {"public"}
SITE = {"site"}

# (method, path) -> who may call it. Written by hand on purpose: the test must not derive it from the code.
POLICY: dict[tuple[str, str], set[str]] = {
    ("GET", "/api/v1/health"): PUBLIC,
    ("GET", "/api/v1/me"): ALL,
    ("GET", "/api/v1/users"): {"admin"},
    ("GET", "/api/v1/sites"): ALL,
    ("GET", "/api/v1/sites/tree"): ALL,
    ("POST", "/api/v1/sites/{site_id}/token"): {"admin"},
    ("DELETE", "/api/v1/sites/{site_id}/token"): {"admin"},
    ("GET", "/api/v1/sites/{site_id}/calendar.ics"): ALL,
    ("GET", "/api/v1/meetings"): ALL,
    ("POST", "/api/v1/meetings"): SCHED,
    ("POST", "/api/v1/meetings/check"): SCHED,
    ("GET", "/api/v1/meetings/{meeting_id}"): ALL,
    ("PATCH", "/api/v1/meetings/{meeting_id}"): SCHED,
    ("POST", "/api/v1/meetings/{meeting_id}/cancel"): SCHED,
    ("PATCH", "/api/v1/meetings/{meeting_id}/occurrences/{occurrence_id}"): SCHED,
    ("GET", "/api/v1/meetings/{meeting_id}/history"): ALL,
    ("GET", "/api/v1/meetings/{meeting_id}/readiness"): ALL,
    ("GET", "/api/v1/meetings/{meeting_id}/calendar.ics"): ALL,
    ("POST", "/api/v1/agents/heartbeat"): SITE,
    ("POST", "/api/v1/meetings/{meeting_id}/join-token"): SITE,
    ("GET", "/api/v1/agents/meetings"): SITE,
    ("GET", "/lang/{code}"): PUBLIC,
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("POST", "/logout"): ALL,
    ("GET", "/"): ALL,
    ("GET", "/meetings/new"): SCHED,
    ("POST", "/meetings/new"): SCHED,
    ("GET", "/meetings/{meeting_id}/edit"): SCHED,
    ("POST", "/meetings/{meeting_id}/edit"): SCHED,
    ("POST", "/meetings/{meeting_id}/cancel"): SCHED,
    ("GET", "/meetings/{meeting_id}"): ALL,
    ("GET", "/site"): ALL,
    ("GET", "/api/v1/meetings/{meeting_id}/recordings"): ALL,
    ("GET", "/api/v1/recordings/{recording_id}/file"): ALL,
    ("POST", "/api/v1/meetings/{meeting_id}/recording/start"): SCHED,
    ("POST", "/api/v1/meetings/{meeting_id}/recording/stop"): SCHED,
    ("GET", "/api/v1/turn"): ALL | SITE,
    ("GET", "/api/v1/meetings/{meeting_id}/attendance"): ALL,
    ("GET", "/api/v1/meetings/{meeting_id}/attendance.csv"): ALL,
    ("GET", "/api/v1/meetings/{meeting_id}/attendance.xlsx"): ALL,
    ("GET", "/api/v1/meetings/{meeting_id}/live"): ALL,
    ("POST", "/api/v1/meetings/{meeting_id}/live/start"): SCHED,
    ("POST", "/api/v1/meetings/{meeting_id}/live/stop"): SCHED,
    ("POST", "/api/v1/meetings/{meeting_id}/live/rehearsal"): SCHED,
    ("POST", "/api/v1/meetings/{meeting_id}/floor"): SCHED,
    ("DELETE", "/api/v1/meetings/{meeting_id}/floor"): SCHED,
    ("POST", "/api/v1/meetings/{meeting_id}/mute"): SCHED,
    ("POST", "/api/v1/meetings/{meeting_id}/sites/{site_id}/remove"): SCHED,
    ("POST", "/api/v1/meetings/{meeting_id}/hand"): ALL,
    ("GET", "/api/v1/meetings/{meeting_id}/events"): ALL,
    ("GET", "/meetings/{meeting_id}/console"): SCHED,
    ("GET", "/api/v1/meetings/{meeting_id}/wall"): SCHED,
    ("GET", "/api/v1/meetings/{meeting_id}/wall/{site_id}.jpg"): SCHED,
    ("GET", "/meetings/{meeting_id}/wall"): SCHED,
    ("GET", "/join/{token}"): PUBLIC,
    ("GET", "/kiosk/{site_id}"): PUBLIC,
}
APP_LEVEL = {("GET", "/docs"), ("GET", "/openapi.json")}  # public API docs, served from local files
# WebSocket routes authenticate inside the socket (session cookie or join token as first message); their own
# matrix (every role, site and join token, every refusal) is tests/meeting/test_ws_signaling.py.
WS_ROUTES = {"/ws/meetings/{meeting_id}"}


def _routes() -> list[Any]:
    mods = (health, users, sites, meetings, agents, ws, pages, recordings, turn, attendance, live, wall, participant)
    return [r for mod in mods for r in mod.router.routes]


def test_policy_table_covers_every_route() -> None:
    found = {(m, r.path) for r in _routes() for m in r.methods}
    assert found == set(POLICY), f"routes without a tested policy: {found ^ set(POLICY)}"
    assert {r.path for r in ws.ws_router.routes} == WS_ROUTES


def test_every_route_declares_exactly_one_policy_dependency() -> None:
    for r in _routes():
        declared = [d.call.policy for d in r.dependant.dependencies if hasattr(d.call, "policy")]
        assert len(declared) == 1, f"{r.path}: {declared}"
        want = POLICY[(next(iter(r.methods)), r.path)]
        assert set(declared[0]) == want, r.path


def _fill(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"{(\w+)}", lambda m: ids[m.group(1)], path)


def _request(svc: Service, method: str, path: str, headers: dict[str, str], ids: dict[str, str]) -> Any:
    c = svc.client
    url = _fill(path, ids)
    start = future(days=60 + int(ids["n"]))
    ids["n"] = str(int(ids["n"]) + 1)
    if path == "/login" and method == "POST":
        page = c.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        return c.post(
            url,
            data={"username": "admin", "password": "wrong-password!", "csrf_token": token.group(1)},
            headers=headers,
            follow_redirects=False,
        )
    if path in ("/meetings/new", "/meetings/{meeting_id}/edit") and method == "POST":
        form = {
            "title": "Họp",
            "date": start.date().isoformat(),
            "start_time": "08:00",
            "end_time": "09:00",
            "host_site": "094",
            "participants": ["03124"],
        }
        return c.post(url, data=form, headers=headers, follow_redirects=False)
    body: dict[str, Any] | None = None
    if path in ("/api/v1/meetings", "/api/v1/meetings/check"):
        body = meeting_body(start, host_site="094", participants=["03124"])
    elif method == "PATCH" and "occurrences" in path:
        body = {"cancelled": False}
    elif method == "PATCH":
        body = {"agenda": "sửa nội dung"}
    elif path == "/api/v1/agents/heartbeat":
        body = {"status": "idle"}
    return c.request(method, url, json=body, headers=headers, follow_redirects=False)


@pytest.mark.parametrize("who", [None, *ROLES, "site"])
def test_matrix(service: Service, who: str | None) -> None:
    h = service.h("secretariat")
    m = service.client.post("/api/v1/meetings", json=meeting_body(), headers=h).json()
    with service.session() as s:
        site_token = auth.issue_site_token(s, OPERATOR_SITE)
        join_token, _claims = auth.make_join_token(auth.signing_key(s), m["id"], OPERATOR_SITE, 300)
        s.commit()
    ids = {
        "meeting_id": str(m["id"]),
        "occurrence_id": str(m["occurrences"][0]["id"]),
        "site_id": OPERATOR_SITE,
        "code": "en",
        "n": "0",
        "recording_id": "1",
        "token": join_token,
    }
    headers = {"Authorization": f"Bearer {site_token}"} if who == "site" else service.h(who)
    failures = []
    for (method, path), allowed in POLICY.items():
        r = _request(service, method, path, headers, ids)
        is_page = not path.startswith("/api/")
        if r.status_code >= 500:
            failures.append(f"{method} {path} as {who}: {r.status_code}")
        elif allowed == PUBLIC:
            # a wrong password on the login form is a 401 page, not an access refusal
            wrong_password = path == "/login" and 'id="login-error"' in r.text
            if r.status_code == 401 and not wrong_password:
                failures.append(f"{method} {path} (public) as {who}: 401")
        elif who is not None and who in allowed:
            if r.status_code in (401, 403) or (
                r.status_code == 303 and path != "/logout" and "/login" in r.headers["location"]
            ):
                failures.append(f"{method} {path} allowed for {who} but got {r.status_code}")
        elif who is None or who == "site" or allowed == SITE:
            # anonymous, or the wrong kind of credential: API says 401, pages send to the login page
            ok = (
                (r.status_code == 303 and r.headers["location"].startswith("/login"))
                if is_page
                else r.status_code == 401
            )
            if not ok:
                failures.append(f"{method} {path} as {who}: expected 401/login, got {r.status_code}")
        elif r.status_code != 403:
            failures.append(f"{method} {path} as {who}: expected 403, got {r.status_code}")
    assert not failures, "\n".join(failures)


def test_app_level_docs_are_public_and_offline(service: Service) -> None:
    for _method, path in APP_LEVEL:
        assert service.client.get(path).status_code == 200
    html = service.client.get("/docs").text
    assert "cdn" not in html.lower() and "/static/swagger/swagger-ui-bundle.js" in html
    assert service.client.get("/static/swagger/swagger-ui-bundle.js").status_code == 200
