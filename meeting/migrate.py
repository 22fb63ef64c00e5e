"""Run the meeting service's Alembic migrations (on `meeting serve` start and by `meeting db upgrade`)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from meeting.db import make_engine, redact_url

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "meeting_alembic_version"


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Only ``meeting_`` tables: conftool's audit tables live in the same database and are not ours."""
    if type_ != "table" or name is None:
        return True
    return name.startswith("meeting_") and name != VERSION_TABLE


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> str:
    """Bring the database to ``revision``; returns the revision it is at afterwards."""
    logger.info("migrating %s to %s", redact_url(url), revision)
    command.upgrade(alembic_config(url), revision)
    return current(url) or ""


def current(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
            return ctx.get_current_revision()
    finally:
        engine.dispose()


def head() -> str:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head() or ""
