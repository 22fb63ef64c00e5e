"""Alembic: own version table, tables match the models, and other packages' tables are left alone."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from meeting import migrate
from meeting.db import make_engine
from meeting.migrate import VERSION_TABLE, include_object
from meeting.models import Base


def test_upgrade_twice_matches_models_and_spares_others(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE audit_other (id INTEGER PRIMARY KEY)"))
        assert migrate.upgrade(db_url) == migrate.head()
        assert migrate.upgrade(db_url) == migrate.head()  # idempotent
        names = set(inspect(engine).get_table_names())
        assert VERSION_TABLE in names and "alembic_version" not in names and "audit_other" in names
        assert {t for t in Base.metadata.tables} <= names
        with engine.connect() as conn:
            ctx = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_object": include_object}
            )
            diff = compare_metadata(ctx, Base.metadata)
        assert diff == [], diff
    finally:
        engine.dispose()
