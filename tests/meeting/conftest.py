"""Fixtures for the meeting service: a migrated DB with the reference inventory's sites, one user per role."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from conftool.inventory import load
from meeting import migrate
from meeting.db import make_engine, make_sessionmaker, session_scope
from meeting.services import auth, sites
from meeting.services.recurrence import TZ
from meeting.settings import Settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

PASSWORD = "mat-khau-rat-dai-123"
OPERATOR_SITE = "03160"  # a commune of district 096 (Mường Nhé)
ROLES = ("admin", "secretariat", "engineer", "operator")


def future(days: int = 30, hour: int = 8, minute: int = 0) -> datetime:
    """A local (Asia/Ho_Chi_Minh) time safely in the future, at a fixed hour."""
    d = (datetime.now(TZ) + timedelta(days=days)).date()
    return datetime(d.year, d.month, d.day, hour, minute, tzinfo=TZ)


def meeting_body(start: datetime | None = None, hours: float = 2, **over: Any) -> dict[str, Any]:
    s = start or future()
    body: dict[str, Any] = {
        "title": "Giao ban tuần",
        "start": s.isoformat(),
        "end": (s + timedelta(hours=hours)).isoformat(),
        "host_site": "11",
        "participants": ["district:096"],
    }
    body.update(over)
    return body


@dataclass
class Service:
    settings: Settings
    client: TestClient
    tokens: dict[str, str] = field(default_factory=dict)

    def h(self, role: str | None) -> dict[str, str]:
        return {} if role is None else {"Authorization": f"Bearer {self.tokens[role]}"}

    def session(self) -> Session:
        return make_sessionmaker(self.client.app.state.engine)()  # type: ignore[attr-defined]


def prepare_db(url: str, inventory: Path) -> dict[str, str]:
    """Migrate, import the reference sites, add one user per role; returns API tokens per role."""
    migrate.upgrade(url)
    engine = make_engine(url)
    tokens: dict[str, str] = {}
    try:
        with session_scope(make_sessionmaker(engine)) as s:
            sites.sync(s, load(inventory))
            for role in ROLES:
                auth.create_user(s, role, PASSWORD, role, OPERATOR_SITE if role == "operator" else None)
                tokens[role] = auth.issue_api_token(s, role, "tests")
    finally:
        engine.dispose()
    return tokens


@pytest.fixture
def service(db_url: str, reference_inventory: Path, state_dir: Path) -> Iterator[Service]:
    tokens = prepare_db(db_url, reference_inventory)
    from meeting.api.app import create_app

    settings = Settings.load(db_url)
    with TestClient(create_app(settings)) as client:
        yield Service(settings, client, tokens)
