"""The audit result store: every run and finding, with history, in the suite's one database (DESIGN §9).

This module is the *only* way other parts read audits (the meeting service's readiness, reports, alerts), so its
public API is small and typed:

* ``AuditStore(url)`` — opens (and migrates) the store; ``save(run)``, ``runs()``, ``run(id)``, ``latest_run()``,
  ``history(site_ids)``, ``diff(a, b)``.
* ``latest_for_sites(db_url, site_ids)`` — for each site, the newest stored verdict: overall ``status``,
  ``at`` and per-link ``links`` (kind, up, rtt_ms, loss_pct, jitter_ms). Sites never audited are absent.

Tables are prefixed ``audit_`` and migrated by Alembic with their own version table
``conftool_alembic_version``, so they live beside the meeting service's tables without stepping on them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from conftool.audit.results import Finding, RunRecord, Status
from conftool.errors import ConftoolError

logger = logging.getLogger(__name__)

VERSION_TABLE = "conftool_alembic_version"
MIGRATIONS = Path(__file__).parent / "migrations"


class StoreError(ConftoolError):
    """The audit database cannot be opened or read."""


class Base(DeclarativeBase):
    pass


class RunRow(Base):
    __tablename__ = "audit_runs"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    started_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), index=True)
    finished_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    province: Mapped[str] = mapped_column(sa.String(100), default="")
    selector: Mapped[str] = mapped_column(sa.String(500), default="")
    checks: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    summary: Mapped[dict[str, int]] = mapped_column(sa.JSON, default=dict)
    results: Mapped[list[ResultRow]] = relationship(back_populates="run", cascade="all, delete-orphan",
                                                    order_by="ResultRow.id")


class ResultRow(Base):
    __tablename__ = "audit_results"
    __table_args__ = (sa.Index("ix_audit_results_site_run", "site_id", "run_id"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("audit_runs.id", ondelete="CASCADE"), index=True)
    site_id: Mapped[str] = mapped_column(sa.String(10))
    device: Mapped[str | None] = mapped_column(sa.String(100), nullable=True)
    check: Mapped[str] = mapped_column(sa.String(50))
    kind: Mapped[str] = mapped_column(sa.String(100), default="")
    status: Mapped[str] = mapped_column(sa.String(10))
    severity: Mapped[str] = mapped_column(sa.String(10), default="medium")
    detail: Mapped[str] = mapped_column(sa.Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    run: Mapped[RunRow] = relationship(back_populates="results")


def _alembic(url: str) -> Any:
    from alembic.config import Config  # imported when a store opens: keeps `import conftool` light

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["version_table"] = VERSION_TABLE
    return cfg


def default_db_url() -> str:
    """LIENTHONG_DB, else a SQLite file in the state dir (DESIGN §9)."""
    import os

    from conftool.inventory.secrets import default_state_dir

    env = os.environ.get("LIENTHONG_DB")
    if env:
        return env
    d = default_state_dir()
    d.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{d / 'lienthong.db'}"


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


@dataclass
class RunDiff:
    """What changed between two runs: the NOC's "new failures" and "recoveries"."""

    old: int
    new: int
    new_failures: list[Finding] = field(default_factory=list)
    recoveries: list[Finding] = field(default_factory=list)
    still_failing: list[Finding] = field(default_factory=list)


_MIGRATED: set[str] = set()  # database URLs this process has already brought to the newest schema


class AuditStore:
    """Open the store at ``url`` (default LIENTHONG_DB / the state dir), migrating it to the newest schema."""

    def __init__(self, url: str | None = None, *, migrate: bool = True) -> None:
        self.url = url or default_db_url()
        try:
            self.engine = sa.create_engine(self.url, future=True)
            if migrate and self.url not in _MIGRATED:
                # Readiness opens the store on every page view; Alembic's upgrade is start-up work, once per
                # process and database is enough.
                from alembic import command

                command.upgrade(_alembic(self.url), "head")
                _MIGRATED.add(self.url)
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"cannot open the audit database: {exc.__class__.__name__}: "
                             f"{str(exc.orig) if hasattr(exc, 'orig') else exc}"
                             " — check LIENTHONG_DB / --db") from None

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> AuditStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----- writing ---------------------------------------------------------------------------
    def save(self, run: RunRecord) -> int:
        with Session(self.engine) as s, s.begin():
            row = RunRow(started_at=run.started_at, finished_at=run.finished_at, province=run.province,
                         selector=run.selector, checks=list(run.checks), summary=run.summary())
            row.results = [ResultRow(site_id=f.site, device=f.device, check=f.check, kind=f.kind,
                                     status=f.status.value, severity=f.severity, detail=f.detail,
                                     data=f.data) for f in run.findings]
            s.add(row)
            s.flush()
            run.id = row.id
        logger.info("stored audit run %s with %d findings", run.id, len(run.findings))
        return int(run.id)

    # ----- reading ---------------------------------------------------------------------------
    @staticmethod
    def _finding(r: ResultRow) -> Finding:
        return Finding(site=r.site_id, check=r.check, kind=r.kind, status=Status(r.status), detail=r.detail,
                       device=r.device, severity=r.severity, data=dict(r.data or {}))

    def _record(self, row: RunRow, results: Iterable[ResultRow]) -> RunRecord:
        return RunRecord(id=row.id, started_at=_aware(row.started_at), finished_at=_aware(row.finished_at),
                         selector=row.selector, checks=list(row.checks or []), province=row.province,
                         findings=[self._finding(r) for r in results])

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        """Newest first: id, times, selector, checks and the stored status counts (no findings)."""
        with Session(self.engine) as s:
            rows = s.scalars(sa.select(RunRow).order_by(RunRow.id.desc()).limit(limit)).all()
            return [{"id": r.id, "started_at": _aware(r.started_at).isoformat(),
                     "finished_at": _aware(r.finished_at).isoformat(), "selector": r.selector,
                     "checks": list(r.checks or []), "summary": dict(r.summary or {})} for r in rows]

    def run(self, run_id: int) -> RunRecord:
        with Session(self.engine) as s:
            row = s.get(RunRow, run_id)
            if row is None:
                raise StoreError(f"no audit run with id {run_id}; see `conftool audit history`")
            return self._record(row, row.results)

    def latest_run(self) -> RunRecord | None:
        with Session(self.engine) as s:
            rid = s.scalar(sa.select(sa.func.max(RunRow.id)))
        return self.run(int(rid)) if rid is not None else None

    def previous_run_id(self, run_id: int) -> int | None:
        with Session(self.engine) as s:
            rid = s.scalar(sa.select(sa.func.max(RunRow.id)).where(RunRow.id < run_id))
        return int(rid) if rid is not None else None

    def history(self, site_ids: Sequence[str] | None = None, limit: int = 20) -> list[tuple[RunRecord, list[Finding]]]:
        """The last ``limit`` runs (newest first) with the findings of the given sites."""
        with Session(self.engine) as s:
            rows = s.scalars(sa.select(RunRow).order_by(RunRow.id.desc()).limit(limit)).all()
            out: list[tuple[RunRecord, list[Finding]]] = []
            for row in rows:
                q = sa.select(ResultRow).where(ResultRow.run_id == row.id)
                if site_ids:
                    q = q.where(ResultRow.site_id.in_(list(site_ids)))
                res = s.scalars(q.order_by(ResultRow.id)).all()
                out.append((self._record(row, []), [self._finding(r) for r in res]))
        return out

    def diff(self, old_id: int | None = None, new_id: int | None = None) -> RunDiff:
        """New failures and recoveries between two runs (default: the last two)."""
        if new_id is None:
            latest = self.latest_run()
            if latest is None or latest.id is None:
                raise StoreError("no audit run stored yet; run `conftool audit run` first")
            new_id = latest.id
        if old_id is None:
            old_id = self.previous_run_id(new_id)
            if old_id is None:
                raise StoreError(f"run {new_id} is the first stored run; nothing to compare with")
        old, new = self.run(old_id), self.run(new_id)
        return diff_runs(old, new)


_BAD = (Status.FAIL, Status.ERROR)


def diff_runs(old: RunRecord, new: RunRecord) -> RunDiff:
    before = {f.key: f for f in old.findings}
    d = RunDiff(old=old.id or 0, new=new.id or 0)
    for f in new.findings:
        prev = before.get(f.key)
        was_bad = prev is not None and prev.status in _BAD
        if f.status in _BAD:
            (d.still_failing if was_bad else d.new_failures).append(f)
        elif f.status == Status.OK and was_bad:
            d.recoveries.append(f)
    return d


def latest_for_sites(db_url: str | None, site_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The newest audit verdict per site, for readiness: {site: {"status", "at", "run", "links": [...]}}.

    ``status`` is the worst of the site's findings in its newest run (skipped findings do not count);
    ``links`` come from the reachability check: ``{"kind", "up", "rtt_ms", "loss_pct", "jitter_ms", "status"}``.
    A site that was never audited is simply absent — callers say "no audit yet".
    """
    store = AuditStore(db_url)
    try:
        with Session(store.engine) as s:
            latest = (sa.select(ResultRow.site_id, sa.func.max(ResultRow.run_id).label("run_id"))
                      .where(ResultRow.site_id.in_(list(site_ids))).group_by(ResultRow.site_id).subquery())
            rows = s.execute(
                sa.select(ResultRow, RunRow.finished_at)
                .join(latest, sa.and_(ResultRow.site_id == latest.c.site_id, ResultRow.run_id == latest.c.run_id))
                .join(RunRow, RunRow.id == ResultRow.run_id)
            ).all()
    finally:
        store.close()
    order = {Status.OK.value: 0, Status.SKIPPED.value: 0, Status.FAIL.value: 2, Status.ERROR.value: 1}
    out: dict[str, dict[str, Any]] = {}
    for r, at in rows:
        e = out.setdefault(r.site_id, {"status": Status.OK.value, "at": _aware(at), "run": r.run_id,
                                       "links": [], "failures": []})
        if order[r.status] > order[e["status"]]:
            e["status"] = r.status
        if r.status in (Status.FAIL.value, Status.ERROR.value):
            e["failures"].append({"check": r.check, "kind": r.kind, "detail": r.detail})
        if r.check == "reachability":
            data = r.data or {}
            e["links"].append({"kind": r.kind, "up": bool(data.get("up", r.status == Status.OK.value)),
                               "rtt_ms": data.get("rtt_ms"), "loss_pct": data.get("loss_pct"),
                               "jitter_ms": data.get("jitter_ms"), "status": r.status})
    return out
