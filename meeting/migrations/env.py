"""Alembic environment: only the ``meeting_`` tables, versioned in ``meeting_alembic_version``."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Engine

from meeting.db import make_engine
from meeting.migrate import VERSION_TABLE, include_object
from meeting.models import Base


def run() -> None:
    cfg = context.config
    connection = cfg.attributes.get("connection")
    if connection is None:
        engine: Engine = make_engine(cfg.get_main_option("sqlalchemy.url") or "")
        with engine.connect() as conn:
            _configure_and_run(conn)
        engine.dispose()
    else:
        _configure_and_run(connection)


def _configure_and_run(conn: Any) -> None:
    context.configure(
        connection=conn,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        include_object=include_object,
        render_as_batch=conn.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
