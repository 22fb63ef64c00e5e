"""Property-based run of schemathesis against our own OpenAPI, in-process through the ASGI app: no 5xx.

Runs as an admin (sees every operation) with bounded examples per operation, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from meeting.db import make_sessionmaker
from meeting.schemas import MeetingIn
from meeting.services import auth
from meeting.services import meetings as svc
from meeting.settings import Settings
from tests.meeting.conftest import OPERATOR_SITE, future, meeting_body, prepare_db


@pytest.fixture(params=["sqlite", "postgresql"])
def api_env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, reference_inventory: Path
) -> Iterator[dict[str, Any]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('st') / 'st.db'}"
    else:
        url = request.getfixturevalue("pg_cluster").create_database()
    tokens = prepare_db(url, reference_inventory)
    from meeting.api.app import create_app

    settings = Settings.load(url)
    app = create_app(settings, run_migrations=False)
    # some real data, so small generated ids hit existing meetings, occurrences and sites (not only 404s)
    with make_sessionmaker(app.state.engine)() as s:
        for district in ("096", "097", "098"):
            svc.create(
                s,
                settings,
                MeetingIn.model_validate(
                    meeting_body(
                        future(days=40),
                        host_site=district,
                        participants=[f"district:{district}"],
                        rrule="FREQ=DAILY;COUNT=3",
                    )
                ),
                "seed",
            )
        tokens["site"] = auth.issue_site_token(s, OPERATOR_SITE)
        s.commit()
    yield {"app": app, "tokens": tokens}
    app.state.engine.dispose()


def _fuzz(op: Any, headers: dict[str, str], codes: dict[int, int], failures: list[str]) -> None:
    """Up to 20 generated requests for one operation; tally status classes, keep any 5xx with its input."""

    @given(case=op.as_strategy())
    @settings(
        max_examples=20,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=True,
    )
    def run(case: Any) -> None:
        resp = case.call(headers=headers)
        codes[resp.status_code // 100] = codes.get(resp.status_code // 100, 0) + 1
        if resp.status_code >= 500:
            failures.append(
                f"{case.method} {case.formatted_path} -> {resp.status_code}: "
                f"body={case.body!r:.200} query={case.query!r:.200}"
            )

    run()


def test_no_server_errors(api_env: dict[str, Any]) -> None:
    """Every operation of our OpenAPI, bounded examples each; a 5xx fails with the request that caused it."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", api_env["app"])
    admin = {"Authorization": f"Bearer {api_env['tokens']['admin']}"}
    site = {"Authorization": f"Bearer {api_env['tokens']['site']}"}
    failures: list[str] = []
    codes: dict[int, int] = {}
    n_ops = 0
    for result in schema.get_all_operations():
        op = result.ok()
        n_ops += 1
        agent = op.path in ("/api/v1/agents/heartbeat", "/api/v1/meetings/{meeting_id}/join-token")
        _fuzz(op, site if agent else admin, codes, failures)
    assert n_ops >= 19
    assert codes.get(2, 0) >= 50, codes  # the run reached real data, not only validation errors
    assert not failures, "\n".join(failures[:20])
