"""Attendance (điểm danh): who was in a meeting, from when to when, and how good their link was.

The signaling socket writes spans as they happen (``joined`` / ``seen`` / ``left``); nothing here guesses from
heartbeats. A span still open when its server died is closed at its ``last_seen`` on the next start
(``close_stale``), so a crash never turns into hours of invented presence. The report clips every span to the
meeting's occurrence window, merges overlaps (a site that reconnected before its old socket timed out is not
counted twice) and lists the gaps, which is what the secretariat checks after a meeting.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from meeting.errors import InvalidInput
from meeting.models import Attendance, Meeting, Occurrence, Site, User, UserRole, utcnow
from meeting.services.recurrence import to_local

REASONS = ("left", "dropped", "removed", "replaced", "server_restart", "meeting_ended")
QUALITY_KEYS = ("rtt_ms", "loss_pct", "kbps")


def joined(db: Session, meeting_id: int, site_id: str, at: datetime | None = None) -> Attendance:
    """A site's socket is in the room: open a span (closing a dangling one of the same site as ``replaced``)."""
    now = at or utcnow()
    db.execute(update(Attendance)
               .where(Attendance.meeting_id == meeting_id, Attendance.site_id == site_id,
                      Attendance.left_at.is_(None))
               .values(left_at=now, reason="replaced"))
    span = Attendance(meeting_id=meeting_id, site_id=site_id, joined_at=now, last_seen=now, quality={})
    db.add(span)
    db.flush()
    return span


def seen(db: Session, meeting_id: int, site_id: str, sample: dict[str, Any] | None = None,
         at: datetime | None = None) -> None:
    """Still there (a stats report): move ``last_seen`` and fold the link sample into the span's running sums."""
    span = _open_span(db, meeting_id, site_id)
    if span is None:
        return
    span.last_seen = at or utcnow()
    if sample:
        q = dict(span.quality or {})
        for key in QUALITY_KEYS:
            value = sample.get(key)
            if isinstance(value, (int, float)) and value >= 0:
                q[f"{key}_n"] = int(q.get(f"{key}_n", 0)) + 1
                q[f"{key}_sum"] = float(q.get(f"{key}_sum", 0.0)) + float(value)
                q[f"{key}_max"] = max(float(q.get(f"{key}_max", 0.0)), float(value))
        span.quality = q


def left(db: Session, meeting_id: int, site_id: str, reason: str = "left", at: datetime | None = None) -> None:
    """The site's socket is gone: close its open span with why (left on purpose, dropped, removed by the host)."""
    if reason not in REASONS:
        raise ValueError(f"unknown attendance reason {reason!r}")
    span = _open_span(db, meeting_id, site_id)
    if span is not None:
        span.left_at = at or utcnow()
        span.last_seen = span.left_at
        span.reason = reason


def close_stale(db: Session) -> int:
    """On start: spans a previous server process left open end at their ``last_seen`` (its last sign of life)."""
    spans = db.scalars(select(Attendance).where(Attendance.left_at.is_(None))).all()
    for s in spans:
        s.left_at = s.last_seen
        s.reason = "server_restart"
    return len(spans)


def _open_span(db: Session, meeting_id: int, site_id: str) -> Attendance | None:
    return db.scalars(select(Attendance)
                      .where(Attendance.meeting_id == meeting_id, Attendance.site_id == site_id,
                             Attendance.left_at.is_(None))
                      .order_by(Attendance.joined_at.desc())).first()


@dataclass
class SiteAttendance:
    site_id: str
    name: str
    role: str  # host | participant
    minutes: float
    first_join: datetime | None
    last_leave: datetime | None
    connected: bool  # a span is open now
    drops: int
    gaps: list[tuple[datetime, datetime]] = field(default_factory=list)
    rtt_ms: float | None = None
    loss_pct_max: float | None = None
    kbps: float | None = None

    @property
    def status(self) -> str:
        return "absent" if self.first_join is None else "present"

    def as_dict(self) -> dict[str, Any]:
        def iso(d: datetime | None) -> str | None:
            return to_local(d).isoformat() if d else None

        return {"site": self.site_id, "name": self.name, "role": self.role, "status": self.status,
                "minutes": round(self.minutes, 1), "first_join": iso(self.first_join),
                "last_leave": iso(self.last_leave), "connected": self.connected, "drops": self.drops,
                "gaps": [{"from": iso(a), "to": iso(b), "minutes": round((b - a).total_seconds() / 60, 1)}
                         for a, b in self.gaps],
                "quality": {"rtt_ms": self.rtt_ms, "loss_pct_max": self.loss_pct_max, "kbps": self.kbps}}


@dataclass
class Report:
    meeting_id: int
    title: str
    start: datetime
    end: datetime
    sites: list[SiteAttendance]

    @property
    def present(self) -> int:
        return sum(s.status == "present" for s in self.sites)

    def as_dict(self) -> dict[str, Any]:
        return {"meeting": self.meeting_id, "title": self.title, "start": to_local(self.start).isoformat(),
                "end": to_local(self.end).isoformat(), "invited": len(self.sites), "present": self.present,
                "sites": [s.as_dict() for s in self.sites]}


def _window(m: Meeting, occurrence_id: int | None, now: datetime) -> tuple[datetime, datetime]:
    """The occurrence the report is about: the one named, else the latest that has started, else the first."""
    occs: Sequence[Occurrence] = m.occurrences
    if occurrence_id is not None:
        for o in occs:
            if o.id == occurrence_id:
                return o.start_at, o.end_at
        raise InvalidInput("Không có buổi họp {id} trong cuộc họp này", field="occurrence", id=occurrence_id)
    started = [o for o in occs if o.start_at <= now]
    chosen = started[-1] if started else (occs[0] if occs else None)
    return (chosen.start_at, chosen.end_at) if chosen else (m.start_at, m.end_at)


def _merge(spans: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    out: list[tuple[datetime, datetime]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _mean(rows: list[Attendance], key: str) -> float | None:
    n = sum(int(r.quality.get(f"{key}_n", 0)) for r in rows if r.quality)
    if not n:
        return None
    return round(sum(float(r.quality.get(f"{key}_sum", 0.0)) for r in rows if r.quality) / n, 1)


def report(db: Session, m: Meeting, occurrence_id: int | None = None, now: datetime | None = None) -> Report:
    """Per invited site: minutes present within the occurrence window, drops, gaps and a link-quality summary."""
    now = now or utcnow()
    start, end = _window(m, occurrence_id, now)
    # Early arrivals (rehearsal) and late leavers count from the start to the end of the window only.
    horizon = min(end, now)
    rows = db.scalars(select(Attendance).where(Attendance.meeting_id == m.id, Attendance.joined_at < end,
                                               (Attendance.left_at.is_(None)) | (Attendance.left_at > start))
                      .order_by(Attendance.joined_at)).all()
    names = {s.id: s.name for s in db.scalars(select(Site).where(Site.id.in_(m.site_ids))).all()}
    roles = {p.site_id: p.role for p in m.participants}
    out: list[SiteAttendance] = []
    for site_id in m.site_ids:
        mine = [r for r in rows if r.site_id == site_id]
        clipped = [(max(r.joined_at, start), min(r.left_at or horizon, horizon)) for r in mine]
        merged = _merge([(a, b) for a, b in clipped if b > a])
        minutes = sum((b - a).total_seconds() for a, b in merged) / 60
        gaps = [(merged[i][1], merged[i + 1][0]) for i in range(len(merged) - 1)]
        losses = [float(r.quality["loss_pct_max"]) for r in mine if r.quality and "loss_pct_max" in r.quality]
        out.append(SiteAttendance(
            site_id=site_id, name=names.get(site_id, site_id), role=roles.get(site_id, "participant"),
            minutes=minutes, first_join=mine[0].joined_at if mine else None,
            last_leave=None if (not mine or any(r.left_at is None for r in mine)) else max(
                r.left_at for r in mine if r.left_at is not None),
            connected=any(r.left_at is None for r in mine),
            drops=sum(r.reason in ("dropped", "server_restart") for r in mine),
            gaps=gaps, rtt_ms=_mean(mine, "rtt_ms"), loss_pct_max=max(losses) if losses else None,
            kbps=_mean(mine, "kbps")))
    out.sort(key=lambda s: (s.role != "host", s.status != "present", s.site_id))
    return Report(m.id, m.title, start, end, out)


def report_for(db: Session, user: User, m: Meeting, occurrence_id: int | None = None) -> Report:
    """``report`` as ``user`` may see it: a site operator gets only their own site's row (API, downloads, page)."""
    rep = report(db, m, occurrence_id)
    if user.role == UserRole.OPERATOR.value:
        rep.sites = [x for x in rep.sites if x.site_id == user.site_id]
    return rep


CSV_HEADER = {
    "vi": ["Mã", "Điểm cầu", "Vai trò", "Trạng thái", "Số phút có mặt", "Vào lúc", "Rời lúc", "Số lần rớt",
           "Khoảng vắng", "RTT TB (ms)", "Mất gói tối đa (%)", "Tốc độ TB (kbps)"],
    "en": ["Code", "Site", "Role", "Status", "Minutes present", "First join", "Last leave", "Drops", "Gaps",
           "Mean RTT (ms)", "Max loss (%)", "Mean rate (kbps)"],
}
_STATUS = {"vi": {"present": "Có mặt", "absent": "Vắng"}, "en": {"present": "Present", "absent": "Absent"}}
_ROLE = {"vi": {"host": "Chủ trì", "participant": "Tham dự"}, "en": {"host": "Host", "participant": "Participant"}}


def rows(rep: Report, lang: str = "vi") -> list[list[Any]]:
    """The table of the CSV and XLSX downloads (header first), local times, Vietnamese unless ``lang='en'``."""
    lang = "en" if lang == "en" else "vi"

    def t(d: datetime | None) -> str:
        return to_local(d).strftime("%Y-%m-%d %H:%M:%S") if d else ""

    out: list[list[Any]] = [CSV_HEADER[lang]]
    for s in rep.sites:
        gaps = "; ".join(f"{to_local(a):%H:%M:%S}–{to_local(b):%H:%M:%S}" for a, b in s.gaps)
        out.append([s.site_id, s.name, _ROLE[lang].get(s.role, s.role), _STATUS[lang][s.status],
                    round(s.minutes, 1), t(s.first_join), t(s.last_leave), s.drops, gaps,
                    s.rtt_ms if s.rtt_ms is not None else "", s.loss_pct_max if s.loss_pct_max is not None else "",
                    s.kbps if s.kbps is not None else ""])
    return out


def to_csv(rep: Report, lang: str = "vi") -> bytes:
    """UTF-8 with a BOM, so Excel on a commune's Windows PC shows the Vietnamese names right."""
    buf = io.StringIO()
    csv.writer(buf).writerows(rows(rep, lang))
    return b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8")


def to_xlsx(rep: Report, lang: str = "vi") -> bytes:
    from openpyxl import Workbook  # imported on demand: only the download needs it

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Điểm danh" if lang != "en" else "Attendance"
    ws.append([rep.title])
    ws.append([f"{to_local(rep.start):%Y-%m-%d %H:%M} – {to_local(rep.end):%H:%M}",
               f"{rep.present}/{len(rep.sites)}"])
    for r in rows(rep, lang):
        ws.append(r)
    for col, width in zip("ABCDEFGHIJKL", (8, 28, 12, 10, 10, 20, 20, 8, 30, 10, 10, 12), strict=True):
        ws.column_dimensions[col].width = width
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


__all__ = ["Report", "SiteAttendance", "close_stale", "joined", "left", "report", "report_for", "rows", "seen",
           "to_csv", "to_xlsx"]
