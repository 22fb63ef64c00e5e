"""The HTML/Markdown report of stored runs: right numbers from the store (SQLite and PostgreSQL), a page that
opens in real headless Chromium without console errors, and the CLI around it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from conftool.audit.reporting import data as rdata
from conftool.audit.reporting import html as rhtml
from conftool.audit.reporting import markdown as rmd
from conftool.audit.results import Status
from conftool.audit.store import AuditStore, StoreError
from conftool.inventory import Inventory
from tests.audit_ops.conftest import make_run

CONFTOOL = str(Path(sys.executable).parent / "conftool")
T0 = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)
LATEST_FAULTS = {("03154", "dedicated"): Status.FAIL, ("03151", "internet"): Status.FAIL,
                 ("096", "lan"): Status.ERROR}


def seed(url: str) -> list[int]:
    """Three runs: all green; TSLCD of Sín Thầu down; then three link faults and one compliance failure."""
    with AuditStore(url) as st:
        return [st.save(make_run(T0)),
                st.save(make_run(T0 + timedelta(hours=4), {("03154", "dedicated"): Status.FAIL})),
                st.save(make_run(T0 + timedelta(hours=8), LATEST_FAULTS, compliance_fail={"03155"}))]


def test_report_numbers(db_url: str, inv: Inventory) -> None:
    ids = seed(db_url)
    with AuditStore(db_url) as st:
        rep = rdata.build(st, inv)
        first = rdata.build(st, inv, ids[0])
    assert rep.run.id == ids[2]
    k = {x.key: (x.ok, x.total) for x in rep.kpis}
    assert k == {"lan": (6, 7), "internet": (6, 7), "dedicated": (6, 7), "meeting_ready": (4, 7)}
    assert not any(x.met for x in rep.kpis)
    assert rep.compliance_pct == 85.7
    assert rep.failing_sites == ["03151", "03154", "03155", "096"]
    rows = {d.id: d for d in rep.districts}
    assert [d.id for d in rep.districts] == ["11", "095", "096"]
    assert rows["095"].sites == 3 and rows["095"].failing == ["03151"]
    assert rows["096"].failing == ["03154", "03155", "096"]
    assert (rows["096"].kpis["dedicated"].ok, rows["096"].kpis["dedicated"].total) == (2, 3)
    fix = [f for f in rep.failures if f.site == "03155"]
    assert fix[0].fix == "ntp server 10.11.0.11" and fix[0].check == "compliance:LT-NTP-01"
    assert [p.run for p in rep.trend] == ids
    assert [p.pct["dedicated"] for p in rep.trend] == [100.0, 85.7, 85.7]
    assert rep.tree is not None and rep.tree.id == "11"
    states = {n.id: n.state for d in rep.tree.children for n in [d, *d.children]}
    assert states["03154"] == "fail" and states["096"] == "error" and states["03148"] == "ok"
    assert states["094"] == "unknown"  # not in these runs
    assert all(x.met for x in first.kpis) and first.failures == [] and len(first.trend) == 1


def test_markdown(tmp_path: Path, inv: Inventory) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    seed(url)
    with AuditStore(url) as st:
        rep = rdata.build(st, inv)
    md = rmd.render(rep)
    assert "| Mạng TSLCD | 6/7 | 85.7 % ❌ | 100 % |" in md
    assert "| Sẵn sàng họp trực tuyến | 4/7 | 57.1 % ❌ | 100 % |" in md
    assert "Xã Sín Thầu (03154)" in md and "ntp server 10.11.0.11" in md
    assert "Meeting-ready" in rmd.render(rep, "en")


def test_no_run_is_a_clear_error(tmp_path: Path, inv: Inventory) -> None:
    with AuditStore(f"sqlite:///{tmp_path / 'e.db'}") as st, pytest.raises(StoreError, match="no audit run"):
        rdata.build(st, inv)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    """Debian's Chromium through Playwright (never a downloaded browser), fresh profile, no background traffic."""
    from playwright.sync_api import sync_playwright

    if not Path("/usr/bin/chromium").exists():
        pytest.fail("Debian chromium is missing: run scripts/install.sh")
    with sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path="/usr/bin/chromium", headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        try:
            yield ctx
        finally:
            ctx.close()


def test_html_in_chromium(tmp_path: Path, inv: Inventory, browser: object) -> None:
    from playwright.sync_api import BrowserContext

    assert isinstance(browser, BrowserContext)
    url = f"sqlite:///{tmp_path / 'a.db'}"
    seed(url)
    with AuditStore(url) as st:
        path = rhtml.write(rdata.build(st, inv), tmp_path / "out" / "report.html")
    text = path.read_text(encoding="utf-8")
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")  # nothing fetched from outside
    assert "https://" not in text
    page = browser.new_page()
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    tile = page.locator('[data-kpi="dedicated"]')
    assert tile.locator(".ok").inner_text() == "6" and tile.locator(".total").inner_text() == "7"
    assert page.locator('[data-kpi="meeting_ready"] .pct').inner_text() == "57.1"
    assert "miss" in (tile.get_attribute("class") or "")
    assert page.locator("#failing-count").inner_text() == "4"
    failing = sorted({page.locator("#failures tr[data-site]").nth(i).get_attribute("data-site") or ""
                      for i in range(page.locator("#failures tr[data-site]").count())})
    assert failing == ["03151", "03154", "03155", "096"]
    assert page.locator('#tree span[data-site="03154"]').get_attribute("data-state") == "fail"
    assert page.locator("#trend svg polyline").count() == 4
    # Vietnamese first, English on the switch
    h = page.locator('#kpis h2')
    assert h.inner_text() == "Chỉ tiêu so với mục tiêu của tỉnh"
    page.click("#lang")
    assert h.inner_text() == "Indicators against the province's targets"
    assert page.evaluate("document.documentElement.lang") == "en"
    assert errors == []
    assert all(u.startswith("file://") for u in requests), requests


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CONFTOOL, *args], capture_output=True, text=True, env=env, timeout=120)


def test_report_cli(tmp_path: Path, state_dir: Path, reference_inventory: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    ids = seed(url)
    env = {**os.environ, "LIENTHONG_DB": url, "LIENTHONG_INVENTORY": str(reference_inventory)}
    out = tmp_path / "r.html"
    p = _cli("audit", "report", "--html", str(out), env=env)
    assert p.returncode == 0, p.stderr
    assert str(out.resolve()) in p.stdout.replace("\n", "") and out.is_file()
    p = _cli("audit", "report", "--format", "md", "--run", str(ids[0]), env=env)
    assert p.returncode == 0 and f"Lần kiểm tra {ids[0]}" in p.stdout and "Không có trạm nào lỗi." in p.stdout
    p = _cli("audit", "report", "--json", env=env)
    doc = json.loads(p.stdout)
    assert doc["kpis"]["internet"]["ok"] == 6 and doc["failing_sites"] == ["03151", "03154", "03155", "096"]
    p = _cli("audit", "report", "--html", str(out), "--run", "999", env=env)
    assert p.returncode == 2 and "no audit run with id 999" in p.stderr and "Traceback" not in p.stderr
    p = _cli("audit", "report", env=env)
    assert p.returncode == 2 and "--html FILE" in p.stderr


def test_html_escapes_device_text(tmp_path: Path, inv: Inventory) -> None:
    """Details come from device output: they must never become markup in the report."""
    url = f"sqlite:///{tmp_path / 'a.db'}"
    run = make_run(T0, {("03154", "dedicated"): Status.FAIL})
    run.findings[-4].detail = '<script>alert("x")</script>'  # LAN of 03155, the last site
    run.findings[-4].status = Status.FAIL
    with AuditStore(url) as st:
        st.save(run)
        text = rhtml.render(rdata.build(st, inv))
    assert "<script>alert" not in text and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in text
