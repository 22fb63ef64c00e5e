"""Maintenance windows: planned work on a site silences its alerts (a telco swapping a PE is not an outage).

Two sources, both honoured:

* the inventory: ``vars.maintenance`` of a site, a list of ``{start, end, reason}`` (ISO 8601; a time without an
  offset is the province's local time, Asia/Ho_Chi_Minh) — for work planned with the change calendar;
* the database: ``conftool audit maintenance add SITE --start … --end …`` — for work decided today.

A window on a site also covers the sites under it (a district's window covers its communes, whose traffic
rides through the district). Windows live in the table ``audit_maint_windows``, created on first use.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from conftool.audit.errors import AuditError
from conftool.inventory import Inventory, Site

logger = logging.getLogger(__name__)

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")

# Core definitions for the queries below; the schema itself is made by the store's Alembic migration
# (a2_alerts_maintenance), so the engine must be an `AuditStore`'s (opening the store migrates it).
metadata = sa.MetaData()
windows_table = sa.Table(
    "audit_maint_windows", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("site_id", sa.String(10), nullable=False, index=True),
    sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reason", sa.Text, nullable=False, default=""),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class Window:
    site: str
    start: datetime
    end: datetime
    reason: str = ""
    source: str = "db"  # db | inventory
    id: int | None = None

    def active(self, at: datetime) -> bool:
        return self.start <= at < self.end

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "site": self.site, "start": self.start.isoformat(), "end": self.end.isoformat(),
                "reason": self.reason, "source": self.source}


def parse_time(value: object, where: str) -> datetime:
    """ISO 8601 (or a YAML datetime); naive means the province's local time. Errors name `where`."""
    if isinstance(value, datetime):
        dt = value
    else:
        try:
            dt = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            raise AuditError(f"{where}: {value!r} is not a date-time; write e.g. 2026-11-22T22:00 "
                             "(local time) or 2026-11-22T15:00Z") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=LOCAL_TZ)
    return dt.astimezone(UTC)


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def inventory_windows(inv: Inventory) -> list[Window]:
    """Windows declared in the inventory (`vars.maintenance`); a malformed entry is an error naming the site."""
    out: list[Window] = []
    for site in inv.sites:
        raw = site.vars.get("maintenance")
        if raw is None:
            continue
        if not isinstance(raw, list):
            raise AuditError(f"site {site.id} vars.maintenance: expected a list of {{start, end, reason}}")
        for i, item in enumerate(raw):
            where = f"site {site.id} vars.maintenance[{i}]"
            if not isinstance(item, dict) or "start" not in item or "end" not in item:
                raise AuditError(f"{where}: expected {{start: …, end: …, reason: …}}")
            start, end = parse_time(item["start"], f"{where}.start"), parse_time(item["end"], f"{where}.end")
            if end <= start:
                raise AuditError(f"{where}: end {end.isoformat()} is not after start {start.isoformat()}")
            out.append(Window(site.id, start, end, str(item.get("reason", "")), "inventory"))
    return out


class MaintenanceBook:
    """The windows of one database plus those of the inventory."""

    def __init__(self, engine: Engine, inv: Inventory | None = None) -> None:
        self.engine = engine
        self.inv = inv

    def add(self, site: str, start: datetime, end: datetime, reason: str = "") -> Window:
        if self.inv is not None:
            self.inv.get(site)  # unknown id -> SelectorError naming it
        if end <= start:
            raise AuditError(f"maintenance window for {site}: end {end.isoformat()} is not after start "
                             f"{start.isoformat()}")
        with self.engine.begin() as c:
            res = c.execute(windows_table.insert().values(site_id=site, starts_at=start, ends_at=end, reason=reason,
                                                          created_at=datetime.now(UTC)))
            pk = res.inserted_primary_key
            assert pk is not None
            wid = int(pk[0])
        logger.info("maintenance window %s on site %s from %s to %s", wid, site, start, end)
        return Window(site, start, end, reason, "db", wid)

    def remove(self, window_id: int) -> bool:
        with self.engine.begin() as c:
            n = c.execute(windows_table.delete().where(windows_table.c.id == window_id)).rowcount
        return bool(n)

    def windows(self, *, active_at: datetime | None = None) -> list[Window]:
        with self.engine.connect() as c:
            rows = c.execute(windows_table.select().order_by(windows_table.c.starts_at)).all()
        out = [Window(r.site_id, _aware(r.starts_at), _aware(r.ends_at), r.reason, "db", r.id) for r in rows]
        if self.inv is not None:
            out += inventory_windows(self.inv)
        if active_at is not None:
            out = [w for w in out if w.active(active_at)]
        return sorted(out, key=lambda w: (w.start, w.site))

    def silenced(self, at: datetime) -> dict[str, Window]:
        """Every site silenced at `at` (the window's own site and the sites under it) → the window."""
        out: dict[str, Window] = {}
        for w in self.windows(active_at=at):
            out[w.site] = w
            if self.inv is not None:
                for s in _descendants(self.inv, w.site):
                    out.setdefault(s.id, w)
        return out


def _descendants(inv: Inventory, site_id: str) -> list[Site]:
    out: list[Site] = []
    todo = [site_id]
    while todo:
        for child in inv.children(todo.pop()):
            out.append(child)
            todo.append(child.id)
    return out
