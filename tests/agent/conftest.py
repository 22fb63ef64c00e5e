"""A namespace pair of the agent tests' own (``lt-agent-test-<pid>`` and ``…-b``), shaped like tests/media's.

WebRTC needs a non-loopback interface of ours (aioice gathers no loopback candidates); the room agents' side sits
behind the veth in ``-b`` so its link can be cut alone. Removed in the finalizer, also when a test fails.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from tests.media.conftest import MediaNetns


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@pytest.fixture(scope="session")
def agent_netns() -> Iterator[MediaNetns]:
    if os.geteuid() != 0:
        pytest.fail("agent tests create network namespaces and need root")
    pid = os.getpid()
    net = MediaNetns(ns=f"lt-agent-test-{pid}", ns_b=f"lt-agent-test-{pid}-b", if_a=f"lta{pid}a")
    if_b = f"lta{pid}b"
    created: list[str] = []
    try:
        for ns in (net.ns, net.ns_b):
            _ip("netns", "add", ns)
            created.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", net.ns, "link", "add", net.if_a, "type", "veth", "peer", "name", if_b, "netns", net.ns_b)
        _ip("-n", net.ns, "addr", "add", f"{net.addr_a}/24", "dev", net.if_a)
        _ip("-n", net.ns, "link", "set", net.if_a, "up")
        _ip("-n", net.ns_b, "addr", "add", f"{net.addr_b}/24", "dev", if_b)
        _ip("-n", net.ns_b, "link", "set", if_b, "up")
        yield net
    finally:
        for ns in reversed(created):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
