"""The console's JavaScript in Chromium against a real ``meeting serve`` (no rooms connected: no lab needed).

What the 10-agent lab test cannot show cheaply: the page renders every invited site grouped by district with "–"
for figures it does not have, the buttons call the API with the session's CSRF token, refusals appear on the page,
the confirm dialog guards removal, the log fills, the English switch, and an operator's 403 page.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.meeting.conftest import PASSWORD, future
from tests.meeting.test_browser import ARGS, CHROMIUM

HOST = "11"
SPEAKER = "03160"  # a commune of district 096 (Mường Nhé), like tests/meeting's operator site


def test_console_buttons_in_chromium(server: str, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian package chromium is missing (scripts/apt-packages.txt): run scripts/install.sh")
    from playwright.sync_api import expect, sync_playwright

    start = future(days=3)
    with sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=[*ARGS, "--no-proxy-server"])
        try:
            page = ctx.new_page()
            page.goto(server + "/login")
            page.fill("#username", "secretariat")
            page.fill("#password", PASSWORD)
            page.click("#login-submit")
            csrf = page.locator("input[name=csrf_token]").first.get_attribute("value")
            assert csrf
            r = page.request.post(server + "/api/v1/meetings", headers={"x-csrf-token": csrf}, data={
                "title": "Giao ban Mường Nhé", "start": start.isoformat(),
                "end": start.replace(hour=start.hour + 2).isoformat(), "host_site": HOST,
                "participants": ["district:096"]})
            assert r.status == 201, r.text()
            mid = r.json()["id"]
            page.goto(f"{server}/meetings/{mid}")
            page.click("#console-link")
            expect(page.locator("h1")).to_contain_text("Điều hành cuộc họp")

            rows = page.locator("#sites tr[data-site]")
            expect(rows).to_have_count(12)  # the hall + the 11 communes of Mường Nhé
            expect(page.locator("#sites tr.district")).to_have_count(2)  # the province level, then Mường Nhé
            speaker = page.locator(f'#sites tr[data-site="{SPEAKER}"]')
            expect(speaker).to_have_attribute("data-state", "invited")
            expect(speaker.locator(".rtt")).to_have_text("–")
            expect(speaker.locator(".state")).to_have_text("Đã mời")
            expect(page.locator("#live-state")).to_have_attribute("data-state", "idle")
            expect(page.locator("#floor")).to_have_attribute("data-site", "")
            expect(page.locator("#counts")).to_have_text("Đã kết nối 0/11")

            page.click("#rehearsal")  # chạy thử before the real start
            expect(page.locator("#live-state")).to_have_attribute("data-state", "rehearsal")
            expect(page.locator("#live-state")).to_have_text("Đang chạy thử")
            page.click("#start")
            expect(page.locator("#live-state")).to_have_attribute("data-state", "live")
            expect(page.locator("#start")).to_be_disabled()
            expect(page.locator("#live-state")).to_have_text("Đang họp")

            page.click("#mute-all")
            for i in range(rows.count()):
                row = rows.nth(i)
                want = "0" if row.get_attribute("data-site") == HOST else "1"
                expect(row).to_have_attribute("data-muted", want)
            page.click(f'button[data-action="unmute"][data-site="{SPEAKER}"]')
            expect(speaker).to_have_attribute("data-muted", "0")

            # a hand raised for the room (what its operator's page sends) shows on the console
            r = page.request.post(f"{server}/api/v1/meetings/{mid}/hand", headers={"x-csrf-token": csrf},
                                  data={"site": SPEAKER, "raised": True})
            assert r.status == 200, r.text()
            expect(speaker).to_have_attribute("data-hand", "1")
            expect(speaker.locator(".hand")).to_contain_text("Đang giơ tay")
            # the floor only goes to a connected room: the grant button is hidden and the API refusal is shown
            expect(speaker.locator('button[data-action="grant"]')).to_be_hidden()
            status = page.evaluate(f"""() => fetch('/api/v1/meetings/{mid}/floor', {{method: 'POST',
                credentials: 'same-origin', headers: {{'content-type': 'application/json',
                'x-csrf-token': document.getElementById('console').dataset.csrf}},
                body: JSON.stringify({{site: '{SPEAKER}'}})}}).then(r => r.status)""")
            assert 400 <= status < 500, status
            expect(page.locator("#floor")).to_have_attribute("data-site", "")

            # removal asks first: dismissing the dialog changes nothing, accepting removes the site
            victim = page.locator('#sites tr[data-site="03154"]')
            page.once("dialog", lambda d: d.dismiss())
            page.click('button[data-action="remove"][data-site="03154"]')
            page.wait_for_timeout(1500)
            expect(victim).to_have_attribute("data-state", "invited")
            page.once("dialog", lambda d: d.accept())
            page.click('button[data-action="remove"][data-site="03154"]')
            expect(victim).to_have_attribute("data-state", "removed")
            expect(victim.locator('button[data-action="remove"]')).to_be_hidden()

            # the log lists what was done, newest first
            log = page.locator("#events")
            expect(log.locator('li[data-action="remove"]')).to_have_count(1, timeout=5_000)
            expect(log.locator('li[data-action="start"]')).to_have_count(1)
            expect(log).to_contain_text("Mời ra")

            # stop asks first, then ends the meeting for everyone
            page.once("dialog", lambda d: d.accept())
            page.click("#stop")
            expect(page.locator("#live-state")).to_have_attribute("data-state", "ended")
            expect(log.locator('li[data-action="stop"]')).to_have_count(1, timeout=5_000)
            expect(page.locator(f'button[data-action="mute"][data-site="{SPEAKER}"]')).to_be_hidden()

            page.click("#lang-switch")
            expect(page.locator("h1")).to_contain_text("Host console")
            expect(victim.locator(".state")).to_have_text("Removed")

            # an operator gets a clear 403 page, not the console
            page.click("header form button")
            page.fill("#username", "operator")
            page.fill("#password", PASSWORD)
            page.click("#login-submit")
            resp = page.goto(f"{server}/meetings/{mid}/console")
            assert resp is not None and resp.status == 403
            expect(page.locator(".err")).to_contain_text("You are not allowed")
        finally:
            ctx.close()
