"""`conftool audit maintenance add|list|remove`: windows from the command line, bad input as exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

CONFTOOL = str(Path(sys.executable).parent / "conftool")


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CONFTOOL, "audit", "maintenance", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def _tonight_in_two_days() -> tuple[str, str, str]:
    """A 22:00–02:00 Vietnam-time window two days from now (never active while the test runs, whatever the date):
    (start, end) as typed by an operator, and the start in UTC as stored."""
    day = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date() + timedelta(days=2)
    start = f"{day.isoformat()}T22:00"
    end = f"{(day + timedelta(days=1)).isoformat()}T02:00"
    return start, end, f"{day.isoformat()}T15:00:00+00:00"


def test_add_list_remove(tmp_path: Path, state_dir: Path, reference_inventory: Path) -> None:
    env = {**os.environ, "LIENTHONG_DB": f"sqlite:///{tmp_path / 'a.db'}",
           "LIENTHONG_INVENTORY": str(reference_inventory)}
    start, end, start_utc = _tonight_in_two_days()
    p = _cli(env, "add", "03154", "--start", start, "--end", end, "--reason", "VNPT thay thiết bị", "--json")
    assert p.returncode == 0, p.stderr
    w = json.loads(p.stdout)["items"][0]
    assert w["start"] == start_utc and w["site"] == "03154"  # local time → UTC
    doc = json.loads(_cli(env, "list", "--json").stdout)
    assert [(i["id"], i["reason"]) for i in doc["items"]] == [(w["id"], "VNPT thay thiết bị")]
    assert json.loads(_cli(env, "list", "--active", "--json").stdout)["items"] == []
    p = _cli(env, "remove", str(w["id"]))
    assert p.returncode == 0 and "removed window" in p.stdout
    p = _cli(env, "remove", str(w["id"]))
    assert p.returncode == 2 and f"no maintenance window with id {w['id']}" in p.stderr
    p = _cli(env, "add", "99999", "--start", start, "--end", end)
    assert p.returncode == 2 and "99999" in p.stderr and "Traceback" not in p.stderr
    p = _cli(env, "add", "03154", "--start", "tonight", "--end", end)
    assert p.returncode == 2 and "--start: 'tonight' is not a date-time" in p.stderr
