"""The userspace link emulator on its own: two hosts joined through a wire namespace, measured with ping.

Uses its own namespaces (`ltw-*`), not the lab's, so it runs beside a lab; always removes them.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab

A, B, W = "ltw-a", "ltw-b", "ltw-wire"


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    cp = subprocess.run(list(cmd), capture_output=True, text=True, timeout=60)
    if check and cp.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)}: {cp.stderr}")
    return cp


@pytest.fixture
def wire(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")
    proc: subprocess.Popen[bytes] | None = None
    try:
        for ns in (A, B, W):
            sh("ip", "netns", "add", ns)
        sh("ip", "-n", A, "link", "add", "eth0", "type", "veth", "peer", "name", "pa", "netns", W)
        sh("ip", "-n", B, "link", "add", "eth0", "type", "veth", "peer", "name", "pb", "netns", W)
        for ns, addr in ((A, "192.0.2.1/24"), (B, "192.0.2.2/24")):
            sh("ip", "-n", ns, "addr", "add", addr, "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "netns", "exec", ns, "ethtool", "-K", "eth0", "tx", "off", "tso", "off", "gso", "off")
        for port in ("pa", "pb"):
            sh("ip", "-n", W, "link", "set", port, "up")
        cfg = tmp_path / "links.json"
        cfg.write_text(json.dumps({"generation": 1, "links": [
            {"a": "pa", "b": "pb", "a_to_b": {"delay_ms": 20}, "b_to_a": {"delay_ms": 20}}]}))
        proc = subprocess.Popen(["ip", "netns", "exec", W, sys.executable, "-m", "conftool.lab.wire",
                                 "--config", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ack = cfg.with_suffix(".ack")
        for _ in range(100):
            if ack.exists():
                break
            time.sleep(0.05)
        yield cfg, proc
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        for ns in (A, B, W):
            sh("ip", "netns", "del", ns, check=False)


def ping(count: int, interval: float) -> tuple[float, float]:
    out = sh("ip", "netns", "exec", A, "ping", "-q", "-c", str(count), "-i", str(interval), "-W", "2",
             "192.0.2.2", check=False).stdout
    loss = float(re.search(r"([\d.]+)% packet loss", out).group(1))  # type: ignore[union-attr]
    m = re.search(r"= [\d.]+/([\d.]+)/", out)
    return loss, float(m.group(1)) if m else float("nan")


def reconfigure(cfg: Path, proc: subprocess.Popen[bytes], gen: int, params: dict[str, float]) -> dict[str, object]:
    cfg.write_text(json.dumps({"generation": gen, "links": [{"a": "pa", "b": "pb", "a_to_b": params,
                                                             "b_to_a": params}]}))
    proc.send_signal(signal.SIGHUP)
    ack = cfg.with_suffix(".ack")
    for _ in range(100):
        doc = json.loads(ack.read_text())
        if doc["generation"] == gen:
            return dict(doc)
        time.sleep(0.05)
    raise AssertionError("the emulator did not take its new config")


def test_delay_then_loss_then_plain(wire: tuple[Path, subprocess.Popen[bytes]]) -> None:
    cfg, proc = wire
    ping(2, 0.2)  # ARP across the emulator first
    loss, rtt = ping(10, 0.1)
    assert loss == 0 and 38 <= rtt <= 150, (loss, rtt)  # 20 ms each way

    doc = reconfigure(cfg, proc, 2, {"loss_pct": 100})
    assert sorted(doc["ports"]) == ["pa", "pb"]  # type: ignore[call-overload]
    assert ping(5, 0.05)[0] == 100

    reconfigure(cfg, proc, 3, {})
    loss, rtt = ping(10, 0.05)
    assert loss == 0 and rtt < 10, (loss, rtt)
    counters = reconfigure(cfg, proc, 4, {})["ports"]
    assert counters["pa"]["lost"] >= 5 and counters["pa"]["tx"] >= 20  # type: ignore[index]
