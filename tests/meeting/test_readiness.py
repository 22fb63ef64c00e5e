"""Readiness: the agent heartbeat (real) and the latest audit (conftool.audit.store), never invented."""

from __future__ import annotations

from datetime import timedelta

import pytest

from meeting.models import Heartbeat, utcnow
from meeting.services import auth, readiness
from tests.meeting.conftest import Service, meeting_body


def _meeting(svc: Service) -> dict:  # type: ignore[type-arg]
    r = svc.client.post("/api/v1/meetings", json=meeting_body(), headers=svc.h("secretariat"))
    assert r.status_code == 201
    return r.json()  # type: ignore[no-any-return]


def _beat(svc: Service, site: str) -> None:
    with svc.session() as s:
        tok = auth.issue_site_token(s, site)
        s.commit()
    r = svc.client.post(
        "/api/v1/agents/heartbeat", json={"status": "idle"}, headers={"Authorization": f"Bearer {tok}"}
    )
    assert r.status_code == 200


def test_without_audit_store_says_no_audit_yet(service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readiness, "STORE_MODULE", "conftool.audit.not_there_yet")
    m = _meeting(service)
    _beat(service, "03160")
    doc = service.client.get(f"/api/v1/meetings/{m['id']}/readiness", headers=service.h("engineer")).json()
    assert doc["audit_available"] is False and doc["total"] == 12 and doc["ready"] == 0
    assert doc["summary"] == "Sẵn sàng 0/12"
    by_site = {s["site"]: s for s in doc["sites"]}
    assert by_site["03160"]["reasons"] == ["Chưa có kết quả kiểm tra"]
    assert by_site["03160"]["heartbeat_age_s"] is not None
    assert "Máy điểm cầu chưa từng gửi tín hiệu" in by_site["03158"]["reasons"]
    en = service.client.get(
        f"/api/v1/meetings/{m['id']}/readiness?lang=en", headers=service.h("engineer")
    ).json()
    assert en["summary"] == "Ready 0/12" and "No audit yet" in {r for s in en["sites"] for r in s["reasons"]}


def test_stale_heartbeat_is_a_reason(service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readiness, "STORE_MODULE", "conftool.audit.not_there_yet")
    m = _meeting(service)
    with service.session() as s:
        s.add(Heartbeat(site_id="03158", last_seen=utcnow() - timedelta(minutes=10), detail={}))
        s.commit()
    doc = service.client.get(f"/api/v1/meetings/{m['id']}/readiness", headers=service.h("operator")).json()
    reasons = {s["site"]: s["reasons"] for s in doc["sites"]}["03158"]
    assert any(r.startswith("Máy điểm cầu mất tín hiệu") for r in reasons)


def test_with_real_audit_store(service: Service) -> None:
    store = pytest.importorskip("conftool.audit.store")
    results = pytest.importorskip("conftool.audit.results")
    m = _meeting(service)
    for site in m["participants"]:
        _beat(service, site)
    now = utcnow()
    findings = []
    for site in m["participants"]:
        for kind in ("dedicated", "internet"):
            data = {"up": True, "rtt_ms": 20.0, "loss_pct": 0.0, "jitter_ms": 2.0}
            status = results.Status.OK
            if site == "03158" and kind == "dedicated":
                data, status = {"up": False}, results.Status.FAIL
            if site == "03159" and kind == "internet":
                data = {"up": True, "rtt_ms": 400.0, "loss_pct": 0.0, "jitter_ms": 2.0}
            findings.append(
                results.Finding(site=site, check="reachability", kind=kind, status=status, data=data)
            )
    # one site is left out of the audit on purpose: it must say "no audit yet", not "ready"
    findings = [f for f in findings if f.site != "03161"]
    with store.AuditStore(service.settings.db_url) as st:
        st.save(
            results.RunRecord(
                started_at=now, finished_at=now, selector="all", checks=["reachability"], findings=findings
            )
        )
    doc = service.client.get(f"/api/v1/meetings/{m['id']}/readiness", headers=service.h("engineer")).json()
    assert doc["audit_available"] is True
    reasons = {s["site"]: s["reasons"] for s in doc["sites"]}
    assert reasons["03158"] == ["Đường dedicated mất kết nối"]
    assert reasons["03159"] == ["Đường internet: RTT 400.0 ms vượt ngưỡng 150.0 ms"]
    assert reasons["03161"] == ["Chưa có kết quả kiểm tra"]
    assert doc["ready"] == 9 and doc["summary"] == "Sẵn sàng 9/12"


def test_meeting_page_shows_readiness(service: Service) -> None:
    m = _meeting(service)
    html = service.client.get(f"/meetings/{m['id']}", headers=service.h("engineer")).text
    assert "Sẵn sàng 0/12" in html and "Chưa có kết quả kiểm tra" in html
