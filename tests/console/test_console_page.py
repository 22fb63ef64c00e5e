"""The host console page: who may open it, the markup contract the browser tests rely on, both languages."""

from __future__ import annotations

import json
import re

from meeting.api.deps import LANG_COOKIE
from tests.meeting.conftest import Service, meeting_body


def _texts(html: str) -> dict[str, str]:
    found = re.search(r'<script type="application/json" id="console-text">(.*?)</script>', html, re.S)
    assert found, "the console's text table is missing"
    return dict(json.loads(found[1]))


def _meeting(service: Service) -> int:
    r = service.client.post("/api/v1/meetings", json=meeting_body(), headers=service.h("secretariat"))
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def test_console_for_the_secretariat_in_vietnamese(service: Service) -> None:
    mid = _meeting(service)
    r = service.client.get(f"/meetings/{mid}/console", headers=service.h("secretariat"))
    assert r.status_code == 200, r.text
    html = r.text
    assert "Điều hành cuộc họp" in html
    for marker in ('id="sites"', 'id="floor"', 'id="start"', 'id="stop"', 'id="rehearsal"', 'id="mute-all"',
                   'id="unmute-all"', 'id="events"', f'href="/meetings/{mid}/wall"',
                   f'href="/api/v1/meetings/{mid}/attendance.csv?lang=vi"', 'src="/static/console.js"'):
        assert marker in html, marker
    assert f'data-meeting="{mid}"' in html
    # the texts console.js shows are server-side translations handed over as JSON
    text = _texts(html)
    assert text["dropped"] == "Rớt kết nối" and text["connected"] == "Đã kết nối"


def test_console_in_english(service: Service) -> None:
    mid = _meeting(service)
    service.client.cookies.set(LANG_COOKIE, "en")
    try:
        r = service.client.get(f"/meetings/{mid}/console", headers=service.h("admin"))
    finally:
        service.client.cookies.clear()
    assert r.status_code == 200
    assert "Host console" in r.text
    text = _texts(r.text)
    assert text["dropped"] == "Dropped" and text["remove"] == "Remove"


def test_operators_and_engineers_get_a_clear_403_page(service: Service) -> None:
    mid = _meeting(service)
    for role in ("operator", "engineer"):
        r = service.client.get(f"/meetings/{mid}/console", headers=service.h(role))
        assert r.status_code == 403, (role, r.status_code)
        assert "text/html" in r.headers["content-type"]
        assert "Bạn không có quyền thực hiện thao tác này" in r.text
    anon = service.client.get(f"/meetings/{mid}/console", follow_redirects=False)
    assert anon.status_code in (303, 401), anon.status_code


def test_unknown_meeting_is_404(service: Service) -> None:
    r = service.client.get("/meetings/999999/console", headers=service.h("secretariat"))
    assert r.status_code == 404


def test_meeting_page_links_console_and_wall_for_the_secretariat_only(service: Service) -> None:
    mid = _meeting(service)
    page = service.client.get(f"/meetings/{mid}", headers=service.h("secretariat")).text
    assert f'href="/meetings/{mid}/console"' in page and f'href="/meetings/{mid}/wall"' in page
    op = service.client.get(f"/meetings/{mid}", headers=service.h("operator"))
    assert op.status_code == 200
    assert "/console" not in op.text
