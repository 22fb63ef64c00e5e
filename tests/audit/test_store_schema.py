"""The alert and maintenance tables come from the store's Alembic migrations (SQLite and PostgreSQL alike), and a
database whose tables were made by the older `create_all` code upgrades without losing its rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from conftool.audit import alerts, maintenance
from conftool.audit.store import AuditStore

TABLES = [alerts.state_table, alerts.outbox_table, maintenance.windows_table]


def test_migrations_make_the_tables_the_code_queries(db_url: str) -> None:
    with AuditStore(db_url) as st:
        insp = sa.inspect(st.engine)
        for t in TABLES:
            cols = {c["name"] for c in insp.get_columns(t.name)}
            assert cols == {c.name for c in t.columns}, t.name
        book = maintenance.MaintenanceBook(st.engine)
        now = datetime.now(UTC)
        w = book.add("03124", now, now + timedelta(hours=1), "thay thiết bị")
        assert [x.id for x in book.windows(active_at=now)] == [w.id]


def test_database_made_by_create_all_upgrades_and_keeps_rows(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/old.db"
    with AuditStore(url) as st:  # a1 only, as databases made before a2 were
        from alembic import command

        from conftool.audit.store import _alembic

        command.downgrade(_alembic(url), "a1_audit_initial")
        meta = sa.MetaData()
        for t in TABLES:
            t.to_metadata(meta)
        meta.create_all(st.engine)
        now = datetime.now(UTC)
        with st.engine.begin() as c:
            c.execute(maintenance.windows_table.insert().values(site_id="03124", starts_at=now,
                                                                ends_at=now + timedelta(hours=1), reason="cũ",
                                                                created_at=now))
        command.upgrade(_alembic(url), "head")
        with st.engine.connect() as c:
            assert c.scalar(sa.select(sa.func.count()).select_from(maintenance.windows_table)) == 1
            assert c.scalar(sa.text("SELECT version_num FROM conftool_alembic_version")) == "a2_alerts_maintenance"
