"""Reminders N minutes before each occurrence: e-mail to the sites' contacts (inventory) and a webhook.

What was sent is recorded per occurrence and channel, so a restart or a second process never sends twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import smtplib
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from meeting.db import session_scope
from meeting.models import Meeting, MeetingStatus, Occurrence, ReminderSent, Site, utcnow
from meeting.services.recurrence import to_local
from meeting.settings import Settings

logger = logging.getLogger(__name__)

MAX_LEAD = timedelta(days=7)  # reminder_minutes is at most a week (schema)


@dataclass
class SendResult:
    occurrence_id: int
    channel: str
    ok: bool
    detail: str


def due(session: Session, now: datetime) -> list[tuple[Occurrence, Meeting]]:
    """Scheduled occurrences whose reminder time has come and that have not started yet."""
    stmt = (
        select(Occurrence, Meeting)
        .join(Meeting, Meeting.id == Occurrence.meeting_id)
        .where(
            Meeting.reminder_minutes.is_not(None),
            Meeting.status == MeetingStatus.SCHEDULED.value,
            Occurrence.status == MeetingStatus.SCHEDULED.value,
            Occurrence.start_at > now,
            Occurrence.start_at <= now + MAX_LEAD,
        )
        .order_by(Occurrence.start_at)
    )
    out = []
    for occ, m in session.execute(stmt).tuples():
        if occ.start_at - timedelta(minutes=m.reminder_minutes or 0) <= now:
            out.append((occ, m))
    return out


def _already(session: Session, occ_id: int, channel: str) -> bool:
    return session.get(ReminderSent, (occ_id, channel)) is not None


def _text(m: Meeting, occ: Occurrence, site_names: list[str]) -> tuple[str, str]:
    s, e = to_local(occ.start_at), to_local(occ.end_at)
    subject = f"[Nhắc lịch họp / Meeting reminder] {m.title} — {s:%d/%m/%Y %H:%M}"
    body = (
        f"Cuộc họp: {m.title}\nThời gian: {s:%d/%m/%Y %H:%M}–{e:%H:%M} (giờ Việt Nam)\n"
        f"Điểm cầu: {', '.join(site_names)}\n\n{m.agenda}\n\n"
        f"Meeting: {m.title}\nTime: {s:%Y-%m-%d %H:%M}–{e:%H:%M} (Asia/Ho_Chi_Minh)\n"
    )
    return subject, body


def _send_mail(settings: Settings, to: list[str], subject: str, body: str) -> None:
    msg = EmailMessage()
    msg["From"] = settings.mail_from
    msg["To"] = ", ".join(to)
    msg["Subject"] = subject
    msg.set_content(body)
    with smtplib.SMTP(settings.smtp_host or "127.0.0.1", settings.smtp_port, timeout=10) as smtp:
        smtp.send_message(msg)


def _payload(m: Meeting, occ: Occurrence, sites: list[Site]) -> dict[str, Any]:
    return {
        "event": "meeting.reminder",
        "meeting_id": m.id,
        "occurrence_id": occ.id,
        "title": m.title,
        "start": to_local(occ.start_at).isoformat(),
        "end": to_local(occ.end_at).isoformat(),
        "host_site": m.host_site_id,
        "sites": [s.id for s in sites],
    }


def run_once(session: Session, settings: Settings, now: datetime | None = None) -> list[SendResult]:
    """Send every due reminder on every configured channel; failures are reported and retried next time."""
    now = now or utcnow()
    results: list[SendResult] = []
    for occ, m in due(session, now):
        sites = list(session.scalars(select(Site).where(Site.id.in_(m.site_ids)).order_by(Site.id)))
        subject, body = _text(m, occ, [s.full_name for s in sites])
        if settings.smtp_host and not _already(session, occ.id, "email"):
            to = sorted({e for s in sites for e in s.emails})
            try:
                if to:
                    _send_mail(settings, to, subject, body)
                session.add(
                    ReminderSent(occurrence_id=occ.id, channel="email", detail=f"{len(to)} recipients")
                )
                session.commit()
                results.append(SendResult(occ.id, "email", True, f"{len(to)} recipients"))
                logger.info(
                    "reminder e-mail for meeting %d occurrence %d to %d recipients", m.id, occ.id, len(to)
                )
            except (OSError, smtplib.SMTPException) as exc:
                session.rollback()
                results.append(SendResult(occ.id, "email", False, type(exc).__name__))
                logger.warning("reminder e-mail for occurrence %d failed: %s", occ.id, exc)
        if settings.webhook_url and not _already(session, occ.id, "webhook"):
            try:
                r = httpx.post(settings.webhook_url, json=_payload(m, occ, sites), timeout=10)
                r.raise_for_status()
                session.add(ReminderSent(occurrence_id=occ.id, channel="webhook", detail=str(r.status_code)))
                session.commit()
                results.append(SendResult(occ.id, "webhook", True, str(r.status_code)))
            except httpx.HTTPError as exc:
                session.rollback()
                results.append(SendResult(occ.id, "webhook", False, type(exc).__name__))
                logger.warning("reminder webhook for occurrence %d failed: %s", occ.id, exc)
    return results


class ReminderScheduler:
    """Runs ``run_once`` every ``reminder_interval_s`` in a thread; ``stop()`` is idempotent and waits."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings) -> None:
        self._sessions, self._settings = sessions, settings
        self._task: asyncio.Task[None] | None = None
        self._extended = -1e9  # monotonic time of the last series extension

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="meeting-reminders")
            logger.info("reminder scheduler started (every %.0f s)", self._settings.reminder_interval_s)

    async def _loop(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self._tick)
            except Exception:  # keep the loop alive: one bad round must not end reminders for good
                logger.exception("reminder round failed")
            await asyncio.sleep(self._settings.reminder_interval_s)

    def _tick(self) -> None:
        with session_scope(self._sessions) as session:
            if time.monotonic() - self._extended > 3600:
                from meeting.services.meetings import extend_series

                extend_series(session, self._settings)
                self._extended = time.monotonic()
            run_once(session, self._settings)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            logger.info("reminder scheduler stopped")
