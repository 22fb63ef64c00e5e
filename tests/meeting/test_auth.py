"""Passwords, sessions, CSRF, login rate limit, API/site/join tokens (real argon2, both databases)."""

from __future__ import annotations

import logging
import re
import time

import pytest
from sqlalchemy import select

from meeting.errors import InvalidToken
from meeting.models import SiteToken, User
from meeting.services import auth
from tests.meeting.conftest import OPERATOR_SITE, PASSWORD, Service, meeting_body


def _login(svc: Service, username: str, password: str) -> tuple[int, str]:
    page = svc.client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    r = svc.client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token.group(1), "next": "/"},
        follow_redirects=False,
    )
    return r.status_code, r.headers.get("set-cookie", "")


def test_passwords_are_argon2_and_never_stored_in_clear(service: Service) -> None:
    with service.session() as s:
        u = s.scalar(select(User).where(User.username == "admin"))
        assert u is not None
        assert u.password_hash.startswith("$argon2id$") and PASSWORD not in u.password_hash


def test_login_sets_a_safe_cookie_and_csrf_guards_posts(service: Service) -> None:
    code, cookie = _login(service, "secretariat", PASSWORD)
    assert code == 303
    assert "lt_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    assert "Secure" not in cookie  # served over plain http in tests; LIENTHONG_SECURE_COOKIES=1 adds it
    c = service.client
    assert c.get("/api/v1/me").json()["username"] == "secretariat"
    # cookie without the CSRF token: refused; with the token from the page: accepted
    assert c.post("/api/v1/meetings", json=meeting_body()).status_code == 403
    page = c.get("/meetings/new")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf
    r = c.post("/api/v1/meetings", json=meeting_body(), headers={"X-CSRF-Token": csrf.group(1)})
    assert r.status_code == 201, r.text
    # logout ends the session on the server too
    assert c.post("/logout", data={"csrf_token": csrf.group(1)}, follow_redirects=False).status_code == 303
    assert c.get("/api/v1/me").status_code == 401


def test_secure_cookie_setting(db_url: str, reference_inventory, state_dir) -> None:  # type: ignore[no-untyped-def]
    from tests.meeting.conftest import TestClient, prepare_db

    prepare_db(db_url, reference_inventory)
    from meeting.api.app import create_app
    from meeting.settings import Settings

    with TestClient(create_app(Settings.load(db_url, secure_cookies=True))) as c:
        page = c.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token and "Secure" in page.headers["set-cookie"]


def test_login_rate_limit(service: Service) -> None:
    for _ in range(5):
        assert _login(service, "engineer", "wrong-password")[0] == 401
    # even the right password is refused now, for this user and address
    assert _login(service, "engineer", PASSWORD)[0] == 429
    assert _login(service, "admin", PASSWORD)[0] == 303  # another user is not affected


def test_unknown_and_revoked_api_tokens(service: Service) -> None:
    c = service.client
    assert c.get("/api/v1/me", headers={"Authorization": "Bearer ltu_nope"}).status_code == 401
    with service.session() as s:
        assert auth.revoke_api_tokens(s, "engineer") == 1
        s.commit()
    assert c.get("/api/v1/me", headers=service.h("engineer")).status_code == 401


def test_site_token_heartbeat_join_token_and_revocation(service: Service) -> None:
    c = service.client
    m = c.post("/api/v1/meetings", json=meeting_body(), headers=service.h("secretariat")).json()
    with service.session() as s:
        token = auth.issue_site_token(s, OPERATOR_SITE)
        other = auth.issue_site_token(s, "03124")  # a site that is not in the meeting
        s.commit()
        rows = list(s.scalars(select(SiteToken)))
        assert all(token not in r.token_hash and len(r.token_hash) == 64 for r in rows)
    h = {"Authorization": f"Bearer {token}"}
    r = c.post("/api/v1/agents/heartbeat", json={"status": "idle", "agent_version": "1.0"}, headers=h)
    assert r.status_code == 200 and r.json()["site"] == OPERATOR_SITE
    r = c.post(f"/api/v1/meetings/{m['id']}/join-token", headers=h)
    assert r.status_code == 200
    jt = r.json()["token"]
    with service.session() as s:
        key = auth.signing_key(s)
    claims = auth.verify_join_token(key, jt, m["id"])
    assert (
        claims.site_id == OPERATOR_SITE and claims.expires - time.time() <= service.settings.join_token_ttl_s
    )
    with pytest.raises(InvalidToken):
        auth.verify_join_token(key, jt, m["id"] + 1)
    with pytest.raises(InvalidToken):
        auth.verify_join_token(key, jt, m["id"], now=time.time() + 3600)
    with pytest.raises(InvalidToken):
        auth.verify_join_token(key, jt[:-3] + ("AAA" if not jt.endswith("AAA") else "BBB"))
    with pytest.raises(InvalidToken):
        auth.verify_join_token(b"another-key", jt)
    assert (
        c.post(
            f"/api/v1/meetings/{m['id']}/join-token", headers={"Authorization": f"Bearer {other}"}
        ).status_code
        == 403
    )
    # a user's API token is not a site token
    assert c.post("/api/v1/agents/heartbeat", json={}, headers=service.h("admin")).status_code == 401
    with service.session() as s:
        assert auth.revoke_site_tokens(s, OPERATOR_SITE) == 1
        s.commit()
    assert c.post("/api/v1/agents/heartbeat", json={}, headers=h).status_code == 401


def test_logs_carry_no_secrets(service: Service, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    _login(service, "admin", PASSWORD)
    _login(service, "admin", "sai-mat-khau-bi-mat")
    service.client.get("/api/v1/me", headers=service.h("admin"))
    with service.session() as s:
        tok = auth.issue_site_token(s, OPERATOR_SITE)
        s.commit()
    text = caplog.text
    for secret in (PASSWORD, "sai-mat-khau-bi-mat", service.tokens["admin"], tok):
        assert secret not in text


def test_security_headers(service: Service) -> None:
    r = service.client.get("/login")
    assert (
        r.headers["x-frame-options"] == "DENY"
        and "default-src 'self'" in r.headers["content-security-policy"]
    )
