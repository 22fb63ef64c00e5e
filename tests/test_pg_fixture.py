"""The shared PostgreSQL fixture really starts a server both backends can use."""

from __future__ import annotations

import sqlalchemy as sa


def test_db_url_roundtrip(db_url: str) -> None:
    engine = sa.create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (x TEXT)"))
            conn.execute(sa.text("INSERT INTO t VALUES ('Điện Biên')"))
            assert conn.execute(sa.text("SELECT x FROM t")).scalar_one() == "Điện Biên"
        assert engine.dialect.name in ("sqlite", "postgresql")
    finally:
        engine.dispose()
