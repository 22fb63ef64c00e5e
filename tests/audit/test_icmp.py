"""The raw-socket prober: real bursts on loopback and inside a namespace of our own, replies told apart."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from conftool.audit.icmp import Burst, checksum, echo_request, parse_reply, run_bursts
from conftool.audit.probes import ProbeTarget, burst_all

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="raw ICMP sockets and namespaces need root")


def test_echo_request_checksum_verifies() -> None:
    pkt = echo_request(0x1234, 7, 0xDEADBEEF, 123456789)
    assert checksum(pkt) == 0  # a packet with its checksum in place sums to zero


def test_parse_reply_keeps_only_our_token() -> None:
    icmp = bytearray(echo_request(42, 3, 99, 555))
    icmp[0] = 0  # echo reply
    ip = bytes([0x45]) + bytes(19)
    assert parse_reply(ip + bytes(icmp), 99) == (42, 3, 555)
    assert parse_reply(ip + bytes(icmp), 100) is None  # another prober's reply in the same namespace
    req = ip + echo_request(42, 3, 99, 555)
    assert parse_reply(req, 99) is None  # our own request seen on loopback is not a reply
    assert parse_reply(b"\x45" + bytes(10), 99) is None


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"lt-t-icmp-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


@root_only
def test_bursts_on_loopback_and_in_a_namespace(netns: str) -> None:
    """Three bursts at once: this namespace's loopback, a namespace whose loopback is up, and one whose loopback
    is down (nothing answers); plus a namespace that does not exist (an error, not a silent pass)."""
    subprocess.run(["ip", "-n", netns, "addr", "add", "10.254.254.1/32", "dev", "lo"], check=True)
    subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)
    bursts = [Burst("here", "127.0.0.1", None), Burst("inside", "10.254.254.1", netns),
              Burst("absent", "10.254.254.1", "lt-t-icmp-missing")]
    run_bursts(bursts, count=20, interval=0.01, wait=0.5)
    here, inside, absent = (b.result() for b in bursts)
    assert (here["sent"], here["received"], here["error"]) == (20, 20, None)
    assert (inside["sent"], inside["received"], inside["error"]) == (20, 20, None)
    assert all(0 < r < 50 for r in here["rtts_ms"] + inside["rtts_ms"])
    assert absent["sent"] == 0 and "lt-t-icmp-missing" in absent["error"]
    # the namespace's own address is not reachable from here: it really was probed inside
    subprocess.run(["ip", "-n", netns, "link", "set", "lo", "down"], check=True)
    dead = [Burst("down", "10.254.254.1", netns)]
    run_bursts(dead, count=10, interval=0.01, wait=0.3)
    assert dead[0].result()["sent"] == 10 and dead[0].result()["received"] == 0


@root_only
def test_burst_all_runs_the_prober_process() -> None:
    targets = [ProbeTarget("lan", "127.0.0.1", "this machine"), ProbeTarget("lan", "127.0.0.2", "this machine")]
    res = asyncio.run(burst_all(targets, timeout=10))
    assert [r.target for r in res] == targets
    assert all(r.error is None and r.sent == 100 and r.received == 100 for r in res)
    assert all(r.rtt_ms is not None and r.rtt_ms < 50 for r in res)


@root_only
def test_a_province_of_bursts_on_one_socket_loses_nothing() -> None:
    """420 links × 100 probes through ONE socket (more than any lab namespace carries) on loopback: every reply is
    counted, also when a busy machine gives the prober so little CPU that sending takes longer than the burst
    (the wait for late replies runs from the last send, not from the planned end)."""
    bursts = [Burst(str(i), f"127.0.{i // 250}.{i % 250 + 1}", None) for i in range(420)]
    run_bursts(bursts, count=100, interval=0.01, wait=1.0, parallel=420)
    assert sum(b.sent for b in bursts) == 42_000
    assert sum(len(b.rtts_ms) for b in bursts) == 42_000


@root_only
def test_links_are_probed_in_waves() -> None:
    """At most `parallel` links at once: 6 links, 2 at a time, 10 probes of 10 ms = three waves of ~0.1 s."""
    import time

    bursts = [Burst(str(i), f"127.0.0.{i + 1}", None) for i in range(6)]
    t0 = time.monotonic()
    run_bursts(bursts, count=10, interval=0.01, wait=0.5, parallel=2)
    assert time.monotonic() - t0 >= 0.29
    assert all(b.sent == 10 and len(b.rtts_ms) == 10 for b in bursts)
