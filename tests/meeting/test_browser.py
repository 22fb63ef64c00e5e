"""Real browser against a real `meeting serve`: log in, create a meeting for all communes of one district,
see it in the list, see a conflict warning. Debian's Chromium driven by Playwright (python, no download)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.meeting.conftest import PASSWORD, future, prepare_db

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(db_url: str, tmp_path: Path, reference_inventory: Path, state_dir: Path) -> Iterator[str]:
    url = db_url
    prepare_db(url, reference_inventory)
    port = _free_port()
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "meeting.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--db",
            url,
            "--no-reminders",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "LIENTHONG_STATE": str(state_dir)},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if httpx.get(base + "/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                break
            time.sleep(0.1)
        else:
            pytest.fail("meeting serve did not start")
        assert proc.poll() is None, (tmp_path / "serve.log").read_text()
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def test_secretariat_flow_in_chromium(server: str, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian package chromium is missing (scripts/apt-packages.txt): run scripts/install.sh")
    from playwright.sync_api import expect, sync_playwright

    day = future(days=21).date().isoformat()
    with sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=ARGS
        )
        try:
            page = ctx.new_page()
            page.goto(server + "/")
            expect(page).to_have_url(server + "/login?next=/")
            expect(page.locator("h1")).to_have_text("Đăng nhập")
            page.fill("#username", "secretariat")
            page.fill("#password", PASSWORD)
            page.click("#login-submit")
            expect(page.locator("h1")).to_have_text("Lịch họp")

            page.click("#nav-new")
            page.fill("#title", "Giao ban các xã Mường Nhé")
            page.fill("#date", day)
            page.fill("#start_time", "08:00")
            page.fill("#end_time", "10:00")
            # the picker finds the district typed without diacritics, and hides the others
            page.fill("#site-search", "muong nhe")
            expect(page.locator("#sel-district-096")).to_be_visible()
            expect(page.locator("#sel-district-094")).to_be_hidden()
            page.check("#sel-district-096")
            page.click("#submit")
            expect(page.locator("#readiness-summary")).to_have_text("Sẵn sàng 0/12")
            expect(page.locator("#readiness")).to_contain_text("Chưa có kết quả kiểm tra")

            page.goto(f"{server}/?from={day}&to={day}")
            expect(page.locator("table.meetings")).to_contain_text("Giao ban các xã Mường Nhé")

            # a second meeting for one commune of that district at the same time: conflict warning, not saved
            page.click("#nav-new")
            page.fill("#title", "Họp riêng xã Sín Thầu")
            page.fill("#date", day)
            page.fill("#start_time", "09:00")
            page.fill("#end_time", "11:00")
            page.select_option("#host_site", "096")
            page.fill("#site-search", "Sín Thầu")
            page.check("#sel-03154")
            page.click("#submit")
            warning = page.locator("#conflict-warning")
            expect(warning).to_be_visible()
            expect(warning).to_contain_text("Xung đột lịch")
            expect(warning).to_contain_text("Giao ban các xã Mường Nhé")

            # English switch
            page.click("#lang-switch")
            expect(page.locator("header")).to_contain_text("New meeting")
            page.goto(f"{server}/?from={day}&to={day}")
            expect(page.locator("table.meetings")).not_to_contain_text("Họp riêng xã Sín Thầu")
        finally:
            ctx.close()
