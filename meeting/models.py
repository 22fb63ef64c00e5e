"""The meeting service's tables (prefix ``meeting_``: the audit tables share the database, DESIGN §9).

Times are stored as naive UTC and come back as aware UTC (``UTCDateTime``), so SQLite and PostgreSQL behave
the same. Nothing is ever deleted: meetings are cancelled, sites archived, edits kept in ``meeting_history``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC out; stored naive UTC so both dialects compare them the same way."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UserRole(StrEnum):
    ADMIN = "admin"
    SECRETARIAT = "secretariat"
    ENGINEER = "engineer"
    OPERATOR = "operator"  # site operator: one site, sees its meetings, runs its room


class MeetingStatus(StrEnum):
    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"


class Site(Base):
    """A site imported from the inventory (`meeting sites sync`); archived, never deleted."""

    __tablename__ = "meeting_sites"

    id: Mapped[str] = mapped_column(String(8), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    name_ascii: Mapped[str] = mapped_column(String(200))
    full_name: Mapped[str] = mapped_column(String(250))
    slug: Mapped[str] = mapped_column(String(64))
    level: Mapped[str] = mapped_column(String(16))
    parent_id: Mapped[str | None] = mapped_column(String(8), index=True)
    kind: Mapped[str | None] = mapped_column(String(32))
    emails: Mapped[list[str]] = mapped_column(JSON, default=list)
    thresholds: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    synced_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class User(Base):
    __tablename__ = "meeting_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    site_id: Mapped[str | None] = mapped_column(ForeignKey("meeting_sites.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class UserSession(Base):
    """A login session; the cookie holds a random token, the table only its sha256."""

    __tablename__ = "meeting_user_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("meeting_users.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ApiToken(Base):
    """A Bearer token for a machine acting as a user (scripts, the secretariat's tooling)."""

    __tablename__ = "meeting_api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("meeting_users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SiteToken(Base):
    """A room agent's long-lived site token (DESIGN §9), stored hashed, revocable."""

    __tablename__ = "meeting_site_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("meeting_sites.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class LoginFailure(Base):
    """Failed logins, kept in the DB so the rate limit holds across processes (DESIGN §8)."""

    __tablename__ = "meeting_login_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class Meeting(Base):
    __tablename__ = "meeting_meetings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    agenda: Mapped[str] = mapped_column(Text, default="")
    start_at: Mapped[datetime] = mapped_column(UTCDateTime())  # first occurrence
    end_at: Mapped[datetime] = mapped_column(UTCDateTime())
    rrule: Mapped[str | None] = mapped_column(String(500))
    host_site_id: Mapped[str] = mapped_column(ForeignKey("meeting_sites.id"))
    selectors: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default=MeetingStatus.SCHEDULED.value)
    reminder_minutes: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    participants: Mapped[list[Participant]] = relationship(
        back_populates="meeting", cascade="all, delete-orphan", lazy="selectin"
    )
    occurrences: Mapped[list[Occurrence]] = relationship(
        back_populates="meeting", cascade="all, delete-orphan", order_by="Occurrence.start_at"
    )

    @property
    def site_ids(self) -> list[str]:
        return sorted(p.site_id for p in self.participants)


class Participant(Base):
    """A site in a meeting; the host room is a participant too (role 'host') so conflicts cover it."""

    __tablename__ = "meeting_participants"

    meeting_id: Mapped[int] = mapped_column(ForeignKey("meeting_meetings.id"), primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("meeting_sites.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(16), default="participant")

    meeting: Mapped[Meeting] = relationship(back_populates="participants")

    __table_args__ = (Index("ix_meeting_participants_site", "site_id", "meeting_id"),)


class Occurrence(Base):
    """One concrete time of a meeting, materialised within the horizon so conflicts are one indexed query."""

    __tablename__ = "meeting_occurrences"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meeting_meetings.id"), index=True)
    original_start: Mapped[datetime] = mapped_column(UTCDateTime())  # iCalendar RECURRENCE-ID
    start_at: Mapped[datetime] = mapped_column(UTCDateTime())
    end_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default=MeetingStatus.SCHEDULED.value)
    modified: Mapped[bool] = mapped_column(Boolean, default=False)

    meeting: Mapped[Meeting] = relationship(back_populates="occurrences")

    __table_args__ = (
        UniqueConstraint("meeting_id", "original_start", name="uq_meeting_occurrences_meeting_original"),
        Index("ix_meeting_occurrences_time", "start_at", "end_at"),
    )


class History(Base):
    """Every create/edit/cancel with a snapshot: meetings are never lost."""

    __tablename__ = "meeting_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meeting_meetings.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)


class Heartbeat(Base):
    """The room agent's last heartbeat per site."""

    __tablename__ = "meeting_heartbeats"

    site_id: Mapped[str] = mapped_column(ForeignKey("meeting_sites.id"), primary_key=True)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ReminderSent(Base):
    """Which reminders went out, so a restart or a second process never sends one twice."""

    __tablename__ = "meeting_reminders_sent"

    occurrence_id: Mapped[int] = mapped_column(ForeignKey("meeting_occurrences.id"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    detail: Mapped[str] = mapped_column(String(500), default="")


class ServiceSecret(Base):
    """Server-side keys (join-token signing) kept in the DB so every process of the service shares them."""

    __tablename__ = "meeting_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))


class RecordingStatus(StrEnum):
    RECORDING = "recording"
    DONE = "done"
    FAILED = "failed"
    PURGED = "purged"


class Recording(Base):
    """One recorded floor stream of a meeting (a WebM file under the recordings dir); purged after retention."""

    __tablename__ = "meeting_recordings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meeting_meetings.id"), index=True)
    file_name: Mapped[str] = mapped_column(String(200))  # relative to Settings.recordings_path()
    status: Mapped[str] = mapped_column(String(16), default=RecordingStatus.RECORDING.value)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    duration_s: Mapped[float | None] = mapped_column(Float)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Attendance(Base):
    """One uninterrupted presence of a site in a meeting (điểm danh): a drop and rejoin makes two rows.

    Written as it happens by the signaling socket (join, leave, drop) so a crash loses at most the end of an open
    span; ``last_seen`` moves with every stats report and bounds an open span that a dead server never closed.
    """

    __tablename__ = "meeting_attendance"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meeting_meetings.id"))
    site_id: Mapped[str] = mapped_column(ForeignKey("meeting_sites.id"))
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reason: Mapped[str | None] = mapped_column(String(32))  # left | dropped | removed | replaced | server_restart
    quality: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # running sums of the stats samples

    __table_args__ = (Index("ix_meeting_attendance_meeting_site", "meeting_id", "site_id", "joined_at"),)


class MeetingEvent(Base):
    """One thing that happened in a meeting's live session (issue 11): "everything logged", and the source the
    live state (floor holder, muted and removed sites, idle/rehearsal/live/ended) is rebuilt from after a restart.

    ``actor`` is a username, ``site:<id>`` or ``system``; ``detail`` never holds a secret.
    """

    __tablename__ = "meeting_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meeting_meetings.id"))
    occurrence_id: Mapped[int | None] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(32))
    site_id: Mapped[str | None] = mapped_column(String(8))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (Index("ix_meeting_events_meeting_occurrence", "meeting_id", "occurrence_id", "id"),)
