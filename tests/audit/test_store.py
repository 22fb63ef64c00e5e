"""The audit store on SQLite and PostgreSQL alike: runs, history, diff, readiness, survival across restarts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from conftool.audit.results import Finding, RunRecord, Status
from conftool.audit.store import AuditStore, StoreError, latest_for_sites

T0 = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)


def reach(site: str, kind: str, status: Status, rtt: float | None = 12.5) -> Finding:
    up = status == Status.OK
    return Finding(site=site, check="reachability", kind=kind, status=status, detail="",
                   data={"up": up, "rtt_ms": rtt if up else None, "loss_pct": 0.0 if up else 100.0,
                         "jitter_ms": 1.5 if up else None})


def run(n: int, findings: list[Finding]) -> RunRecord:
    return RunRecord(started_at=T0 + timedelta(hours=n), finished_at=T0 + timedelta(hours=n, seconds=5),
                     selector="lab", checks=["reachability", "drift"], findings=findings, province="11")


def test_save_history_diff_and_restart(db_url: str) -> None:
    r1 = run(1, [reach("03148", "dedicated", Status.OK), reach("03151", "dedicated", Status.FAIL),
                 Finding("03148", "drift", "config", Status.OK, device="rt-song-da")])
    r2 = run(2, [reach("03148", "dedicated", Status.FAIL), reach("03151", "dedicated", Status.OK),
                 Finding("03148", "drift", "config", Status.FAIL, "2 lines", device="rt-song-da",
                         data={"diff": "+x\n"})])
    with AuditStore(db_url) as st:
        id1, id2 = st.save(r1), st.save(r2)
        assert id2 > id1
    # a new process / a restart: a fresh store object reads the same rows
    with AuditStore(db_url) as st:
        runs = st.runs()
        assert [r["id"] for r in runs] == [id2, id1]
        assert runs[0]["summary"] == {"ok": 1, "fail": 2, "error": 0, "skipped": 0}
        back = st.run(id2)
        assert back.started_at == r2.started_at
        assert [(f.site, f.check, f.kind, f.status) for f in back.findings] == [
            (f.site, f.check, f.kind, f.status) for f in r2.findings]
        assert back.findings[2].data == {"diff": "+x\n"}
        d = st.diff()
        assert (d.old, d.new) == (id1, id2)
        assert sorted((f.site, f.check) for f in d.new_failures) == [("03148", "drift"), ("03148", "reachability")]
        assert [(f.site, f.kind) for f in d.recoveries] == [("03151", "dedicated")]
        hist = st.history(["03151"])
        assert [len(fs) for _, fs in hist] == [1, 1]
        assert {f.site for _, fs in hist for f in fs} == {"03151"}
        with pytest.raises(StoreError, match="no audit run with id"):
            st.run(999)


def test_latest_for_sites_contract(db_url: str) -> None:
    """The meeting service's readiness reads exactly this shape."""
    with AuditStore(db_url) as st:
        st.save(run(1, [reach("03148", "dedicated", Status.FAIL)]))
        st.save(run(2, [reach("03148", "dedicated", Status.OK), reach("03148", "lan", Status.SKIPPED, None),
                        Finding("03148", "device", "ssh", Status.OK, device="rt-song-da")]))
    out = latest_for_sites(db_url, ["03148", "99999"])
    assert set(out) == {"03148"}
    e = out["03148"]
    assert e["status"] == "ok"
    links = {lk["kind"]: lk for lk in e["links"]}
    assert links["dedicated"] == {"kind": "dedicated", "up": True, "rtt_ms": 12.5, "loss_pct": 0.0,
                                  "jitter_ms": 1.5, "status": "ok"}
    assert links["lan"]["status"] == "skipped"


def test_diff_needs_two_runs(db_url: str) -> None:
    with AuditStore(db_url) as st:
        with pytest.raises(StoreError, match="no audit run stored yet"):
            st.diff()
        st.save(run(1, []))
        with pytest.raises(StoreError, match="first stored run"):
            st.diff()
