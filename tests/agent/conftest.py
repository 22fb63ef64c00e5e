"""A namespace pair of the agent tests' own (``lt-agent-test-<pid>`` and ``…-b``), shaped like tests/media's.

WebRTC needs a non-loopback interface of ours (aioice gathers no loopback candidates); the room agents' side sits
behind the veth in ``-b`` so its link can be cut alone. Removed in the finalizer, also when a test fails.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.media.conftest import MediaNetns, veth_namespaces


@pytest.fixture(scope="session")
def agent_netns() -> Iterator[MediaNetns]:
    with veth_namespaces("agent tests", "lt-agent-test", "lta") as net:
        yield net
