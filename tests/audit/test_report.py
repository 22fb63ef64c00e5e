"""The summary in the province's own terms and the failing sites grouped by district; history/diff CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from conftool.audit.report import failing_by_district, summarize
from conftool.audit.results import Finding, RunRecord, Status
from conftool.audit.store import AuditStore
from conftool.inventory import load

CONFTOOL = str(Path(sys.executable).parent / "conftool")
NOW = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)


def R(site: str, kind: str, st: Status) -> Finding:
    return Finding(site, "reachability", kind, st)


def record(findings: list[Finding]) -> RunRecord:
    return RunRecord(NOW, NOW, "all", ["reachability", "drift", "compliance"], findings, "11")


def test_province_line() -> None:
    fs = []
    for i, sid in enumerate(["03124", "03127", "03148", "03151"]):
        fs.append(R(sid, "lan", Status.SKIPPED if i else Status.OK))
        fs.append(R(sid, "internet", Status.FAIL if sid == "03127" else Status.OK))
        fs.append(R(sid, "dedicated", Status.FAIL if sid == "03148" else Status.OK))
        fs.append(Finding(sid, "drift", "config", Status.FAIL if sid == "03151" else Status.OK))
        fs.append(Finding(sid, "compliance", "LT-PWD-01", Status.FAIL if sid == "03124" else Status.OK))
        fs.append(Finding(sid, "compliance", "LT-NTP-01", Status.SKIPPED))
    s = summarize(record(fs))
    assert s.line() == ("LAN 1/1 (3 not probed) · Internet 3/4 · TSLCD 3/4 · meeting-ready 2/4 · drift 1 · "
                        "compliance 75 %")
    d = s.as_dict()
    assert d["links"]["dedicated"] == {"ok": 3, "total": 4, "not_probed": 0}
    assert d["fail"] == 4 and d["skipped"] == 7


def test_failing_grouped_by_district(reference_inventory: Path) -> None:
    inv = load(reference_inventory)
    fs = [R("03148", "dedicated", Status.FAIL), R("03151", "internet", Status.FAIL),
          R("03124", "lan", Status.OK), Finding("11", "device", "ssh", Status.ERROR), R("095", "lan", Status.FAIL)]
    groups = failing_by_district(record(fs), inv)
    labels = list(groups)
    assert labels[0].endswith("(11)")  # the province first
    assert labels[1] == "Thị xã Mường Lay (095)"
    assert [name for name, _ in groups[labels[1]]] == ["Thị xã Mường Lay (095)", "Phường Sông Đà (03148)",
                                                        "Phường Na Lay (03151)"]


def test_history_and_diff_cli(tmp_path: Path, reference_inventory: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    with AuditStore(url) as st:
        a = st.save(record([R("03148", "dedicated", Status.FAIL), R("03151", "dedicated", Status.OK)]))
        b = st.save(record([R("03148", "dedicated", Status.OK), R("03151", "dedicated", Status.FAIL)]))
    cp = subprocess.run([CONFTOOL, "audit", "diff", "--db", url, "--json"], capture_output=True, text=True)
    assert cp.returncode == 1, cp.stderr  # a new failure
    doc = json.loads(cp.stdout)
    assert doc["summary"] == {"old": a, "new": b, "new_failures": 1, "recoveries": 1, "still_failing": 0}
    changes = {(i["site"], i["change"]) for i in doc["items"]}
    assert changes == {("03151", "new_failure"), ("03148", "recovery")}
    cp = subprocess.run([CONFTOOL, "audit", "diff", str(b), str(a), "--db", url, "--json"], capture_output=True,
                        text=True)
    assert {(i["site"], i["change"]) for i in json.loads(cp.stdout)["items"]} == {
        ("03148", "new_failure"), ("03151", "recovery")}
    cp = subprocess.run([CONFTOOL, "audit", "history", "--db", url, "-i", str(reference_inventory),
                         "--site", "03148", "--json"], capture_output=True, text=True)
    assert cp.returncode == 0, cp.stderr
    rows = json.loads(cp.stdout)["items"]
    assert [(r["id"], r["ok"], r["fail"]) for r in rows] == [(b, 1, 0), (a, 0, 1)]
    cp = subprocess.run([CONFTOOL, "audit", "history", "--db", url], capture_output=True, text=True,
                        env={**os.environ, "COLUMNS": "200"})
    assert cp.returncode == 0 and "03151 reachability:dedicated" in cp.stdout
    cp = subprocess.run([CONFTOOL, "audit", "diff", "42", "--db", url], capture_output=True, text=True)
    assert cp.returncode == 2 and "no audit run with id 42" in cp.stderr


def test_run_without_lab_needs_direct(state_dir: Path, reference_inventory: Path) -> None:
    """No lab and no --direct: a clear usage error, and nothing is sent anywhere."""
    cp = subprocess.run([CONFTOOL, "audit", "run", "-i", str(reference_inventory), "--db",
                         f"sqlite:///{state_dir / 'x.db'}"], capture_output=True, text=True,
                        env={**os.environ, "LIENTHONG_STATE": str(state_dir)})
    assert cp.returncode == 2 and "no lab is running" in cp.stderr and "--direct" in cp.stderr
    cp = subprocess.run([CONFTOOL, "audit", "run", "-i", str(reference_inventory), "--check", "bogus", "--json"],
                        capture_output=True, text=True, env={**os.environ, "LIENTHONG_STATE": str(state_dir)})
    assert cp.returncode == 2 and "unknown check bogus" in cp.stderr
