"""A namespace pair of the live-control tests' own (``lt-live-test-<pid>`` and ``…-b``), shaped like tests/media's.

The server sits in the first namespace (10.99.0.1), the room agents behind the veth in ``-b``; both are removed in
the finalizer, also when a test fails. The API and role tests use the meeting tests' ``service`` fixture
(TestClient, SQLite and PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.media.conftest import MediaNetns, veth_namespaces
from tests.meeting.conftest import service  # noqa: F401  (fixture)


@pytest.fixture(scope="session")
def live_netns() -> Iterator[MediaNetns]:
    with veth_namespaces("live-control tests", "lt-live-test", "ltl") as net:
        yield net
