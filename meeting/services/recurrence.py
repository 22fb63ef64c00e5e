"""Recurrence (RFC 5545 RRULE via python-dateutil) expanded in Vietnam time, stored as UTC occurrences."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import DAILY, rrule, rrulestr

from meeting.settings import DEFAULT_TZ

logger = logging.getLogger(__name__)

TZ = ZoneInfo(DEFAULT_TZ)
MIN_YEAR, MAX_YEAR = 2000, 2100  # far enough for any meeting; keeps date arithmetic clear of overflow
_ALLOWED_KEYS = {
    "FREQ",
    "UNTIL",
    "COUNT",
    "INTERVAL",
    "BYDAY",
    "BYMONTHDAY",
    "BYMONTH",
    "BYSETPOS",
    "WKST",
    "BYWEEKNO",
    "BYYEARDAY",
}


class RRuleError(ValueError):
    """A broken or unusable RRULE; ``msgid`` is the catalog message that explains it."""

    def __init__(self, msgid: str, **params: object) -> None:
        self.msgid = msgid
        self.params = params
        super().__init__(msgid.format(**params))


def in_range(dt: datetime) -> bool:
    return MIN_YEAR <= dt.year <= MAX_YEAR


def to_local(dt: datetime) -> datetime:
    """Aware datetime in Asia/Ho_Chi_Minh; a naive one is already local (what the secretariat types)."""
    return dt.replace(tzinfo=TZ) if dt.tzinfo is None else dt.astimezone(TZ)


def to_utc(dt: datetime) -> datetime:
    return to_local(dt).astimezone(UTC)


def normalize(text: str) -> str:
    t = text.strip()
    if t.upper().startswith("RRULE:"):
        t = t[6:]
    return t.upper()


def parse(text: str, start_local: datetime) -> rrule:
    """Parse ``text`` as one RRULE starting at ``start_local``; raise ``RRuleError`` saying what is wrong."""
    t = normalize(text)
    if not t or "\n" in t or not re.fullmatch(r"[A-Z0-9=;,+\-]+", t):
        raise RRuleError("Quy tắc lặp (RRULE) không hợp lệ: {rule}", rule=text[:80])
    parts = {}
    for part in t.split(";"):
        key, sep, value = part.partition("=")
        if not sep or not value:
            raise RRuleError("Quy tắc lặp (RRULE) không hợp lệ: {rule}", rule=text[:80])
        if key not in _ALLOWED_KEYS:
            raise RRuleError("Quy tắc lặp không hỗ trợ {key}", key=key)
        parts[key] = value
    if parts.get("FREQ") not in {"DAILY", "WEEKLY", "MONTHLY", "YEARLY"}:
        raise RRuleError("Quy tắc lặp (RRULE) cần FREQ là DAILY, WEEKLY, MONTHLY hoặc YEARLY")
    if "UNTIL" in parts and parts["UNTIL"].endswith("Z"):
        # RFC 5545: a trailing Z means UTC (what calendar clients export). We expand in local wall time with a
        # naive DTSTART (dateutil refuses to mix them), so convert the instant to Vietnam wall time rather than
        # dropping the Z, which would move the end of the series by 7 hours.
        parts["UNTIL"] = _utc_until_to_local(parts["UNTIL"], text)
        t = ";".join(f"{k}={v}" for k, v in parts.items())
    try:
        rule = rrulestr(t, dtstart=start_local.replace(tzinfo=None))
    except (ValueError, TypeError, OverflowError, IndexError, KeyError) as exc:
        raise RRuleError("Quy tắc lặp (RRULE) không hợp lệ: {rule}", rule=f"{text[:80]} ({exc})") from None
    if not isinstance(rule, rrule):
        raise RRuleError("Quy tắc lặp (RRULE) không hợp lệ: {rule}", rule=text[:80])
    return rule


def _utc_until_to_local(value: str, text: str) -> str:
    """``20261130T100000Z`` (UTC) -> ``20261130T170000`` (Vietnam wall time), as naive RRULE text."""
    try:
        instant = datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise RRuleError("Quy tắc lặp (RRULE) không hợp lệ: {rule}", rule=text[:80]) from None
    return instant.astimezone(TZ).strftime("%Y%m%dT%H%M%S")


def expand(
    start: datetime, end: datetime, rule_text: str | None, horizon_days: int, max_count: int
) -> list[tuple[datetime, datetime]]:
    """The occurrences (UTC start, UTC end) of a meeting within ``horizon_days`` of its first start.

    The first start is always an occurrence (RFC 5545 DTSTART). Times repeat in local wall-clock time.
    """
    start_l, end_l = to_local(start), to_local(end)
    duration = end_l - start_l
    if not rule_text:
        return [(start_l.astimezone(UTC), end_l.astimezone(UTC))]
    rule = parse(rule_text, start_l)
    limit = start_l.replace(tzinfo=None) + timedelta(days=horizon_days)
    out: list[datetime] = [start_l.replace(tzinfo=None)]
    for occ in rule.xafter(start_l.replace(tzinfo=None), count=max_count + 1, inc=True):
        if occ > limit or len(out) >= max_count:
            break
        if occ != out[0]:
            out.append(occ)
    return [
        ((o.replace(tzinfo=TZ)).astimezone(UTC), (o.replace(tzinfo=TZ) + duration).astimezone(UTC))
        for o in out
    ]


def following(
    start: datetime, end: datetime, rule_text: str, after: datetime, until: datetime, max_count: int
) -> list[tuple[datetime, datetime]]:
    """Occurrences of the series strictly after ``after`` and up to ``until`` (both UTC): extends a series."""
    start_l = to_local(start)
    duration = to_local(end) - start_l
    rule = parse(rule_text, start_l)
    limit = to_local(until).replace(tzinfo=None)
    out: list[tuple[datetime, datetime]] = []
    for occ in rule.xafter(to_local(after).replace(tzinfo=None), count=max_count, inc=False):
        if occ > limit:
            break
        local = occ.replace(tzinfo=TZ)
        out.append((local.astimezone(UTC), (local + duration).astimezone(UTC)))
    return out


def describe(rule_text: str | None) -> str:
    """Short human text for lists ('FREQ=WEEKLY;BYDAY=MO' stays as is: the secretariat knows it)."""
    return normalize(rule_text) if rule_text else ""


__all__ = ["DAILY", "TZ", "RRuleError", "describe", "expand", "normalize", "parse", "to_local", "to_utc"]
