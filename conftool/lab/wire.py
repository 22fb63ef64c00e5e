"""The lab's userspace link emulator: delay, jitter and loss for links of a kernel without `sch_netem`.

An impaired link is spliced through two veth ports in the lab's wire namespace (`lt-wire`); this one process
forwards Ethernet frames between each pair of ports with AF_PACKET sockets, holding each frame for
delay ± jitter (per direction, order kept: a frame never overtakes the one before it) and dropping a share of
them (loss). Rate limits stay in the kernel (`tbf` on the link's ends). One process serves every link of the lab;
`conftool lab fault` rewrites its config file and sends SIGHUP; the process answers by writing an ack file
holding the config generation it applied and its per-port counters.

Run as `python -m conftool.lab.wire --config FILE` inside the wire namespace (the lab does this).
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import json
import logging
import os
import random
import selectors
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
MAX_FRAME = 65536
BURST = 64  # frames read from one socket per wake-up, so one busy link cannot starve the others
SOCK_BUF = 4 << 20


@dataclass
class Port:
    """One wire port: frames read here leave through `peer` after this direction's delay/jitter/loss."""

    name: str
    sock: socket.socket
    peer: str
    delay_s: float = 0.0
    jitter_s: float = 0.0
    loss: float = 0.0  # 0..1
    last_due: float = 0.0
    counters: dict[str, int] = field(default_factory=lambda: {"rx": 0, "tx": 0, "lost": 0, "errors": 0})


def open_port(name: str) -> socket.socket:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCK_BUF)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCK_BUF)
    s.bind((name, 0))
    s.setblocking(False)
    return s


class Wire:
    """Every spliced link of the lab: ports, their parameters and the queue of frames waiting for their time."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.ack = config.with_suffix(".ack")
        self.ports: dict[str, Port] = {}
        self.queue: list[tuple[float, int, str, bytes]] = []  # (due, seq, out port, frame)
        self.seq = 0
        self.sel = selectors.DefaultSelector()
        self.reload_wanted = True
        self.stop_wanted = False
        self.generation = -1
        self.rng = random.Random()

    # --- configuration -----------------------------------------------------------------------------
    def reload(self) -> None:
        """Open ports that appeared, close those that went away, take the new parameters."""
        self.reload_wanted = False
        try:
            doc = json.loads(self.config.read_text())
        except (OSError, ValueError) as exc:
            logger.error("cannot read %s: %s", self.config, exc)
            return
        wanted: dict[str, dict[str, Any]] = {}
        for link in doc.get("links", []):
            a, b = str(link["a"]), str(link["b"])
            wanted[a] = {**link.get("a_to_b", {}), "peer": b}
            wanted[b] = {**link.get("b_to_a", {}), "peer": a}
        for name in [n for n in self.ports if n not in wanted]:
            port = self.ports.pop(name)
            self.sel.unregister(port.sock)
            port.sock.close()
        for name, p in wanted.items():
            existing = self.ports.get(name)
            if existing is not None:
                port = existing
            else:
                try:
                    sock = open_port(name)
                except OSError as exc:
                    logger.error("cannot open wire port %s: %s", name, exc)
                    continue
                port = Port(name=name, sock=sock, peer=p["peer"])
                self.ports[name] = port
                self.sel.register(sock, selectors.EVENT_READ, name)
            port.peer = p["peer"]
            port.delay_s = float(p.get("delay_ms", 0)) / 1000
            port.jitter_s = float(p.get("jitter_ms", 0)) / 1000
            port.loss = float(p.get("loss_pct", 0)) / 100
        self.generation = int(doc.get("generation", 0))
        self.write_ack()

    def write_ack(self) -> None:
        tmp = self.ack.with_suffix(".tmp")
        tmp.write_text(json.dumps({"generation": self.generation, "pid": os.getpid(),
                                   "ports": {n: p.counters for n, p in self.ports.items()}}))
        os.replace(tmp, self.ack)

    # --- forwarding --------------------------------------------------------------------------------
    def _read(self, port: Port, now: float) -> None:
        for _ in range(BURST):
            try:
                frame, addr = port.sock.recvfrom(MAX_FRAME)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                port.counters["errors"] += 1
                return
            if addr[2] == PACKET_OUTGOING:  # what we (or the wire namespace) sent out of this port
                continue
            port.counters["rx"] += 1
            if port.loss and self.rng.random() < port.loss:
                port.counters["lost"] += 1
                continue
            hold = port.delay_s + (self.rng.uniform(-port.jitter_s, port.jitter_s) if port.jitter_s else 0.0)
            due = max(now + max(hold, 0.0), port.last_due)
            port.last_due = due
            if due <= now:
                self._send(port.peer, frame, port)
            else:
                self.seq += 1
                heapq.heappush(self.queue, (due, self.seq, port.name, frame))

    def _send(self, out: str, frame: bytes, src: Port) -> None:
        peer = self.ports.get(out)
        if peer is None:
            return
        try:
            peer.sock.send(frame)
            src.counters["tx"] += 1
        except OSError:
            src.counters["errors"] += 1

    def _flush(self, now: float) -> None:
        while self.queue and self.queue[0][0] <= now:
            _, _, src, frame = heapq.heappop(self.queue)
            port = self.ports.get(src)
            if port is not None:
                self._send(port.peer, frame, port)

    def run(self) -> None:
        rfd, wfd = socket.socketpair()
        rfd.setblocking(False)
        wfd.setblocking(False)
        signal.set_wakeup_fd(wfd.fileno())
        signal.signal(signal.SIGHUP, lambda *_: setattr(self, "reload_wanted", True))
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stop_wanted", True))
        self.sel.register(rfd, selectors.EVENT_READ, None)
        while not self.stop_wanted:
            if self.reload_wanted:
                self.reload()
            now = time.monotonic()
            timeout = max(0.0, self.queue[0][0] - now) if self.queue else 1.0
            for key, _ in self.sel.select(timeout):
                if key.data is None:
                    with contextlib.suppress(OSError):
                        rfd.recv(512)
                    continue
                port = self.ports.get(key.data)
                if port is not None:
                    self._read(port, time.monotonic())
            self._flush(time.monotonic())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Lien Thong lab link emulator (delay, jitter, loss)")
    ap.add_argument("--config", required=True, type=Path)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s wire %(levelname)s %(message)s")
    Wire(args.config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
