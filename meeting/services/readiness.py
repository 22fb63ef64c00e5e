"""Is each site ready for a meeting? Latest audit (``conftool.audit.store``) + the room agent's heartbeat.

The audit store belongs to another part of the suite and may not exist yet: it is imported lazily, and when it
is missing, empty or silent about a site we say "no audit yet" — never an invented status.

Expected store contract (the audit issue provides it)::

    conftool.audit.store.latest_for_sites(db_url: str, site_ids: list[str]) -> Mapping[str, result]

where a result (mapping or object) has ``status`` ("ok"|"fail"|"error"|"skipped"), ``at`` (datetime) and
``links``: a list of ``{kind, up, rtt_ms, loss_pct, jitter_ms}``.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from meeting.i18n import translate
from meeting.models import Heartbeat, Meeting, Site, utcnow
from meeting.settings import Settings

logger = logging.getLogger(__name__)

NO_AUDIT = "Chưa có kết quả kiểm tra"
STORE_MODULE = "conftool.audit.store"
_METRICS = (
    ("rtt_ms", "Đường {kind}: RTT {value} ms vượt ngưỡng {limit} ms"),
    ("loss_pct", "Đường {kind}: mất gói {value}% vượt ngưỡng {limit}%"),
    ("jitter_ms", "Đường {kind}: jitter {value} ms vượt ngưỡng {limit} ms"),
)


@dataclass
class Reason:
    msgid: str
    params: dict[str, Any] = field(default_factory=dict)

    def text(self, lang: str) -> str:
        return translate(self.msgid, lang).format(**self.params)


@dataclass
class SiteReadiness:
    site: str
    name: str
    reasons: list[Reason]
    heartbeat_age_s: float | None
    audit: dict[str, Any] | None

    @property
    def ready(self) -> bool:
        return not self.reasons


@dataclass
class MeetingReadiness:
    meeting_id: int
    sites: list[SiteReadiness]
    audit_available: bool

    @property
    def ready(self) -> int:
        return sum(1 for s in self.sites if s.ready)

    @property
    def total(self) -> int:
        return len(self.sites)

    def summary(self, lang: str = "vi") -> str:
        return translate("Sẵn sàng {ready}/{total}", lang).format(ready=self.ready, total=self.total)


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def load_audits(settings: Settings, site_ids: Sequence[str]) -> dict[str, Any] | None:
    """Latest audit result per site from the audit store, or None when there is no store to ask."""
    try:
        store = importlib.import_module(STORE_MODULE)
    except ImportError:
        return None
    fn = getattr(store, "latest_for_sites", None)
    if fn is None:
        logger.warning("%s has no latest_for_sites(); readiness shows 'no audit yet'", STORE_MODULE)
        return None
    try:
        result = fn(settings.db_url, list(site_ids))
    except Exception:  # the store is another package's code: its failure must not take readiness down
        logger.exception("audit store failed; readiness shows 'no audit yet'")
        return None
    return dict(result or {})


def _audit_reasons(audit: Any, thresholds: Mapping[str, float]) -> tuple[list[Reason], dict[str, Any]]:
    reasons: list[Reason] = []
    status = str(_get(audit, "status", "") or "")
    at = _get(audit, "at")
    view: dict[str, Any] = {
        "status": status,
        "at": at.isoformat() if isinstance(at, datetime) else at,
        "links": [],
    }
    failures = [f for f in (_get(audit, "failures", []) or []) if _get(f, "check") != "reachability"]
    for f in failures[:3]:
        reasons.append(
            Reason(
                "Kiểm tra {check} {kind}: {detail}",
                {
                    "check": _get(f, "check", "?"),
                    "kind": _get(f, "kind", ""),
                    "detail": str(_get(f, "detail", ""))[:120],
                },
            )
        )
    links_failed = any(_get(lk, "up") is False for lk in (_get(audit, "links", []) or []))
    if status and status != "ok" and not failures and not links_failed:
        reasons.append(Reason("Kiểm tra gần nhất: {status}", {"status": status}))
    for link in _get(audit, "links", []) or []:
        kind = str(_get(link, "kind", "?"))
        lv = {k: _get(link, k) for k in ("up", "rtt_ms", "loss_pct", "jitter_ms")}
        view["links"].append({"kind": kind, **lv})
        if lv["up"] is False:
            reasons.append(Reason("Đường {kind} mất kết nối", {"kind": kind}))
            continue
        for metric, msgid in _METRICS:
            value, limit = lv[metric], thresholds.get(metric)
            if value is not None and limit is not None and float(value) > float(limit):
                reasons.append(Reason(msgid, {"kind": kind, "value": round(float(value), 1), "limit": limit}))
    return reasons, view


def heartbeat_ages(session: Session, site_ids: Iterable[str]) -> dict[str, float]:
    now = utcnow()
    ids = list(site_ids)
    rows: list[Heartbeat] = (
        list(session.scalars(select(Heartbeat).where(Heartbeat.site_id.in_(ids)))) if ids else []
    )
    return {h.site_id: (now - h.last_seen).total_seconds() for h in rows}


def for_sites(
    session: Session, settings: Settings, site_ids: Sequence[str], meeting_id: int = 0
) -> MeetingReadiness:
    sites = {s.id: s for s in session.scalars(select(Site).where(Site.id.in_(list(site_ids))))}
    audits = load_audits(settings, site_ids)
    ages = heartbeat_ages(session, site_ids)
    out: list[SiteReadiness] = []
    for sid in site_ids:
        site = sites.get(sid)
        reasons: list[Reason] = []
        age = ages.get(sid)
        if age is None:
            reasons.append(Reason("Máy điểm cầu chưa từng gửi tín hiệu"))
        elif age > settings.heartbeat_online_s:
            reasons.append(Reason("Máy điểm cầu mất tín hiệu {seconds} giây", {"seconds": int(age)}))
        audit = (audits or {}).get(sid)
        view = None
        if audit is None:
            reasons.append(Reason(NO_AUDIT))
        else:
            extra, view = _audit_reasons(audit, site.thresholds if site else {})
            reasons.extend(extra)
        if site is not None and site.archived_at is not None:
            reasons.append(Reason("Điểm cầu đã bị lưu trữ"))
        out.append(
            SiteReadiness(
                sid, site.full_name if site else sid, reasons, None if age is None else round(age, 1), view
            )
        )
    return MeetingReadiness(meeting_id, out, audits is not None)


def for_meeting(session: Session, settings: Settings, m: Meeting) -> MeetingReadiness:
    return for_sites(session, settings, m.site_ids, m.id)


def record_heartbeat(session: Session, site_id: str, detail: dict[str, Any]) -> Heartbeat:
    hb = session.get(Heartbeat, site_id)
    now = utcnow()
    if hb is None:
        hb = Heartbeat(site_id=site_id, last_seen=now, detail=detail)
        session.add(hb)
    else:
        hb.last_seen, hb.detail = now, detail
    session.flush()
    return hb
