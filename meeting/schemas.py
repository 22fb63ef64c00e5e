"""API schemas (pydantic), kept apart from the tables; validation messages are catalog msgids (VI, with EN).

A custom error carries its Vietnamese msgid in ``ctx["msgid"]``; the API's error handler renders it in both
languages (see ``meeting.api.errors``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from meeting.services import recurrence

MAX_DURATION = timedelta(hours=24)
MAX_ID = 2_147_483_647
SiteId = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=2, max_length=8, pattern=r"^[0-9]+$")
]
Selector = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


def custom_error(kind: str, msgid: str, **params: Any) -> PydanticCustomError:
    return PydanticCustomError(kind, msgid.format(**params), {"msgid": msgid, **params})


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*")
    @classmethod
    def _no_nul(cls, v: Any) -> Any:
        # PostgreSQL text cannot hold NUL: refuse it here instead of failing in the database.
        values = v if isinstance(v, list) else [v]
        if any(isinstance(x, str) and "\x00" in x for x in values):
            raise custom_error("nul_character", "Không được chứa ký tự NUL")
        return v


def _localize(v: Any) -> Any:
    if not isinstance(v, datetime):
        return v
    if not recurrence.in_range(v):
        raise custom_error(
            "time_out_of_range",
            "Thời gian phải trong khoảng năm {lo}–{hi}",
            lo=recurrence.MIN_YEAR,
            hi=recurrence.MAX_YEAR,
        )
    return recurrence.to_local(v)


class MeetingIn(_In):
    """A meeting to create. Times without an offset are Vietnam time (Asia/Ho_Chi_Minh)."""

    title: str = Field(min_length=1, max_length=300, examples=["Giao ban tuần UBND tỉnh"])
    agenda: str = Field(default="", max_length=20_000)
    start: datetime = Field(examples=["2030-01-07T08:00:00+07:00"])
    end: datetime = Field(examples=["2030-01-07T10:00:00+07:00"])
    host_site: SiteId = Field(examples=["11"])
    participants: list[Selector] = Field(
        min_length=1,
        max_length=500,
        description="Selectors: 'all', 'level:commune', 'district:ID-or-slug', or site ids",
        examples=[["district:096"]],
    )
    rrule: str | None = Field(default=None, max_length=500, examples=["FREQ=WEEKLY;BYDAY=MO;COUNT=10"])
    reminder_minutes: int | None = Field(default=None, ge=1, le=10_080)

    @field_validator("start", "end")
    @classmethod
    def _tz(cls, v: datetime) -> datetime:
        out: datetime = _localize(v)
        return out

    @field_validator("rrule")
    @classmethod
    def _rrule_blank(cls, v: str | None) -> str | None:
        return recurrence.normalize(v) if v and v.strip() else None

    @model_validator(mode="after")
    def _schedule(self, info: ValidationInfo) -> MeetingIn:
        ctx = info.context or {}
        if self.end <= self.start:
            raise custom_error("end_before_start", "Giờ kết thúc phải sau giờ bắt đầu")
        if self.end - self.start > MAX_DURATION:
            raise custom_error("too_long", "Một cuộc họp không dài quá {hours} giờ", hours=24)
        if ctx.get("check_past", True):
            now = ctx.get("now") or datetime.now(UTC)
            grace = timedelta(seconds=int(ctx.get("past_grace_s", 300)))
            if self.start < now - grace:
                raise custom_error("start_in_past", "Giờ bắt đầu đã ở trong quá khứ")
        if self.rrule:
            try:
                recurrence.parse(self.rrule, self.start)
            except recurrence.RRuleError as exc:
                raise custom_error("rrule_invalid", exc.msgid, **exc.params) from None
        return self


class MeetingPatch(_In):
    """Fields to change; the merged meeting is validated again like a new one."""

    title: str | None = Field(default=None, min_length=1, max_length=300)
    agenda: str | None = Field(default=None, max_length=20_000)
    start: datetime | None = None
    end: datetime | None = None
    host_site: SiteId | None = None
    participants: list[Selector] | None = Field(default=None, min_length=1, max_length=500)
    rrule: str | None = Field(default=None, max_length=500)
    reminder_minutes: int | None = Field(default=None, ge=1, le=10_080)

    _tz = field_validator("start", "end")(lambda cls, v: _localize(v))


class OccurrencePatch(_In):
    """Edit one occurrence: move it, or cancel just that one."""

    start: datetime | None = None
    end: datetime | None = None
    cancelled: bool | None = None

    _tz = field_validator("start", "end")(lambda cls, v: _localize(v))


class ConflictOut(BaseModel):
    site: str
    site_name: str
    meeting_id: int
    title: str
    start: datetime
    end: datetime


class OccurrenceOut(BaseModel):
    id: int
    meeting_id: int
    title: str
    start: datetime
    end: datetime
    status: str
    modified: bool
    host_site: str
    sites: int


class MeetingOut(BaseModel):
    id: int
    title: str
    agenda: str
    start: datetime
    end: datetime
    rrule: str | None
    host_site: str
    participants: list[str]
    selectors: list[str]
    status: str
    reminder_minutes: int | None
    version: int
    created_by: str
    occurrences: list[OccurrenceOut]


class HistoryOut(BaseModel):
    at: datetime
    actor: str
    action: str
    snapshot: dict[str, Any]


class CheckOut(BaseModel):
    ok: bool
    sites: int
    occurrences: int
    conflicts: list[ConflictOut]
    total_conflicts: int


class SiteOut(BaseModel):
    id: str
    name: str
    full_name: str
    slug: str
    level: str
    parent: str | None
    archived: bool


class HeartbeatIn(_In):
    agent_version: str | None = Field(default=None, max_length=64)
    status: Literal["idle", "in_meeting", "degraded"] = "idle"
    meeting_id: int | None = Field(default=None, ge=1, le=2_147_483_647)
    detail: dict[str, str | int | float | bool | None] = Field(default_factory=dict, max_length=32)


class HeartbeatOut(BaseModel):
    site: str
    received_at: datetime


class JoinTokenOut(BaseModel):
    token: str
    meeting_id: int
    site: str
    expires_at: datetime


class SiteTokenOut(BaseModel):
    site: str
    token: str


class UserOut(BaseModel):
    username: str
    role: str
    site: str | None
    active: bool


class SiteReadinessOut(BaseModel):
    site: str
    name: str
    ready: bool
    reasons: list[str]
    heartbeat_age_s: float | None
    audit: dict[str, Any] | None


class ReadinessOut(BaseModel):
    meeting_id: int
    ready: int
    total: int
    summary: str
    audit_available: bool
    sites: list[SiteReadinessOut]
