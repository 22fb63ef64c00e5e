"""Monthly availability from stored runs: time-weighted, cut at the month's edges and at long silences."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from conftool.audit.errors import AuditError
from conftool.audit.reporting.availability import compute, month_bounds
from conftool.audit.results import Status
from conftool.audit.store import AuditStore
from conftool.inventory import Inventory
from tests.audit_ops.conftest import make_run

CONFTOOL = str(Path(sys.executable).parent / "conftool")
NOV = datetime(2026, 11, 1, tzinfo=UTC)
NOW = datetime(2026, 12, 5, tzinfo=UTC)
SITES = ["03154", "03151"]


def seed(url: str) -> None:
    """Runs at 18:00 on Oct 31 (holds into November), then Nov 10, Nov 20 (down for 5 days), Nov 25."""
    down = {("03154", "dedicated"): Status.FAIL}
    with AuditStore(url) as st:
        st.save(make_run(NOV - timedelta(hours=6), sites=SITES))
        st.save(make_run(datetime(2026, 11, 10, tzinfo=UTC), sites=SITES, degraded={("03151", "internet")}))
        st.save(make_run(datetime(2026, 11, 20, tzinfo=UTC), down, sites=SITES))
        st.save(make_run(datetime(2026, 11, 25, tzinfo=UTC), sites=SITES))
        st.save(make_run(datetime(2026, 12, 2, tzinfo=UTC), down, sites=SITES))  # December: not in November


def test_time_weighted(db_url: str, inv: Inventory) -> None:
    seed(db_url)
    # a day-long max gap: each sample covers at most 24 h, so the month is observed only around the runs
    with AuditStore(db_url) as st:
        rep = compute(st, inv, "2026-11", "link", now=NOW, max_gap=timedelta(days=40))
        short = compute(st, inv, "2026-11", "link", now=NOW, max_gap=timedelta(hours=24))
        prov = compute(st, inv, "2026-11", "provider", now=NOW, max_gap=timedelta(days=40))
    assert rep.runs == 3 and rep.month == "2026-11"
    links = {(la.site, la.kind): la for la in rep.links}
    ded = links[("03154", "dedicated")]
    assert ded.observed_s == 30 * 86400  # the whole month: Oct 31's run holds until Nov 10
    assert ded.up_s == 25 * 86400 and ded.pct == pytest.approx(83.333, abs=1e-3)
    inet = links[("03151", "internet")]  # degraded for 10 days: up, but not within the meeting thresholds
    assert inet.pct == 100.0 and inet.quality_pct == pytest.approx(66.667, abs=1e-3)
    groups = {g.key: g for g in rep.groups}
    assert set(groups) == {"lan", "internet", "dedicated"}
    assert groups["dedicated"].pct == pytest.approx(100 * (25 + 30) / 60, abs=1e-3)
    # short max gap: Oct 31 18:00 covers 18 h of November, then each run 24 h: 18 h + 3 × 24 h observed
    sd = {(la.site, la.kind): la for la in short.links}[("03154", "dedicated")]
    assert sd.observed_s == (18 + 72) * 3600 and sd.up_s == (18 + 48) * 3600
    pg = {g.key: g for g in prov.groups}
    assert set(pg) == {"(LAN) · lan", "Viettel · internet", "VNPT · internet", "VNPT · dedicated"}  # 03151 on VNPT
    assert prov.worst(1)[0].site == "03154"


def test_month_validation() -> None:
    assert month_bounds("2026-12") == (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    with pytest.raises(AuditError, match="expected YYYY-MM"):
        month_bounds("2026-13")


def test_cli(tmp_path: Path, state_dir: Path, reference_inventory: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    seed(url)
    env = {**os.environ, "LIENTHONG_DB": url, "LIENTHONG_INVENTORY": str(reference_inventory)}
    html = tmp_path / "av.html"
    p = subprocess.run([CONFTOOL, "audit", "availability", "--month", "2026-11", "--by", "district", "--json",
                        "--html", str(html)], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["summary"]["runs"] == 3 and doc["summary"]["worst"][0]["site"] == "03154"
    keys = [i["key"] for i in doc["items"]]
    assert keys == ["Huyện Mường Nhé (096)", "Thị xã Mường Lay (095)"]
    assert "Huyện Mường Nhé (096)" in html.read_text(encoding="utf-8")
    p = subprocess.run([CONFTOOL, "audit", "availability", "--by", "telco"], capture_output=True, text=True,
                       env=env, timeout=120)
    assert p.returncode == 2 and "--by 'telco'" in p.stderr
