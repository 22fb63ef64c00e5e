"""A private network namespace pair for WebRTC tests: aioice gathers no loopback candidates, and our tests must
never use the machine's own interfaces.

``lt-media-test-<pid>`` holds the SFU and most peers (veth end ``ltm<pid>a``, 10.99.0.1/24, plus ``lo``);
``lt-media-test-<pid>-b`` holds one peer behind the other veth end (10.99.0.2/24), so loss can be put on that
peer's link alone. Both are removed in the finalizer, also when a test fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class MediaNetns:
    ns: str
    ns_b: str
    if_a: str
    addr_a: str = "10.99.0.1"
    addr_b: str = "10.99.0.2"

    def run_scenario(self, name: str, *args: str, timeout: float = 180) -> dict[str, Any]:
        """Run ``tests.media.scenarios NAME`` inside the namespace and return the JSON it prints last."""
        env = {**os.environ, "LTM_NS_B": self.ns_b, "LTM_IF_A": self.if_a, "PYTHONPATH": str(REPO)}
        cp = subprocess.run(
            ["ip", "netns", "exec", self.ns, sys.executable, "-m", "tests.media.scenarios", name, *args],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout,
        )
        lines = [ln for ln in cp.stdout.splitlines() if ln.startswith("{")]
        if cp.returncode != 0 or not lines:
            pytest.fail(f"scenario {name} exited {cp.returncode}\n--- stdout\n{cp.stdout[-4000:]}\n"
                        f"--- stderr\n{cp.stderr[-6000:]}")
        result: dict[str, Any] = json.loads(lines[-1])
        return result


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@contextlib.contextmanager
def veth_namespaces(label: str, ns_prefix: str, if_prefix: str) -> Iterator[MediaNetns]:
    """Two namespaces of ours joined by one veth (private test addresses), removed on exit even after a failure."""
    if os.geteuid() != 0:
        pytest.fail(f"{label} create network namespaces and need root (run as root, as the lab tests do)")
    pid = os.getpid()
    env = MediaNetns(ns=f"{ns_prefix}-{pid}", ns_b=f"{ns_prefix}-{pid}-b", if_a=f"{if_prefix}{pid}a")
    if_b = f"{if_prefix}{pid}b"
    created: list[str] = []
    try:
        for ns in (env.ns, env.ns_b):
            _ip("netns", "add", ns)
            created.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", env.ns, "link", "add", env.if_a, "type", "veth", "peer", "name", if_b, "netns", env.ns_b)
        _ip("-n", env.ns, "addr", "add", f"{env.addr_a}/24", "dev", env.if_a)
        _ip("-n", env.ns, "link", "set", env.if_a, "up")
        _ip("-n", env.ns_b, "addr", "add", f"{env.addr_b}/24", "dev", if_b)
        _ip("-n", env.ns_b, "link", "set", if_b, "up")
        yield env
    finally:
        for ns in reversed(created):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


@pytest.fixture(scope="session")
def media_netns() -> Iterator[MediaNetns]:
    with veth_namespaces("WebRTC tests", "lt-media-test", "ltm") as env:
        yield env
