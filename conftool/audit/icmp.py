"""Every probe burst of an audit from one process: one raw ICMP socket per source namespace, all links at once.

Why not one `ping` per link: each `ping` is a process (`ip netns exec` + iputils), and every raw ICMP socket of
a namespace receives a copy of every ICMP reply of that namespace, so 140 bursts from the ISP side mean 140
sockets each reading 14 000 replies/s and dropping some on a busy host — the bursts had to be run 16 at a time
(about nine seconds for the full province). Here a source namespace has ONE socket: it sends every link's
burst interleaved (link k starts k/n of an interval late), tells replies apart by ICMP id/sequence and a
per-run token in the payload, and reads the receive time the kernel stamped on each reply (SO_TIMESTAMPNS), so a
busy process delays neither the measured RTT nor the jitter. The 420 bursts of the full province take about nine
seconds, beside the SSH sessions.

It runs as its own process (`python -m conftool.audit.icmp`, JSON on stdin/stdout) so that the audit's SSH
threads never hold the interpreter lock while a probe is due. Needs root (raw sockets; entering a lab
namespace); without root the audit keeps using iputils `ping` (`conftool.audit.probes`).
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import socket
import struct
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

CLONE_NEWNET = 0x40000000
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
SCM_TIMESTAMPNS = SO_TIMESTAMPNS
ICMP_FILTER = 1  # SOL_RAW option: a bit set = that ICMP type is NOT delivered to the socket
SOL_RAW = 255
ECHO_REQUEST, ECHO_REPLY = 8, 0
RCVBUF = 64 << 20  # replies of every link of a namespace wait here while the prober is not scheduled (charged as used)
SNDBUF = 4 << 20  # a frame sent into a veth stays charged to us until the far side's softirq has taken it
_HDR = struct.Struct("!BBHHH")
_PAYLOAD = struct.Struct("!IQ")  # run token, send time (ns, CLOCK_REALTIME: the kernel's receive stamp's clock)


@dataclass
class Burst:
    """One link's burst: where it starts (a namespace, or None for this one) and where it goes."""

    key: str
    address: str
    netns: str | None
    ident: int = 0
    sent_at: dict[int, int] = field(default_factory=dict)  # seq -> send time (ns)
    rtts_ms: dict[int, float] = field(default_factory=dict)  # seq -> RTT of its first reply
    sent: int = 0
    error: str | None = None

    def result(self) -> dict[str, Any]:
        rtts = [self.rtts_ms[s] for s in sorted(self.rtts_ms)]  # in sending order, as jitter needs
        return {"key": self.key, "sent": self.sent, "received": len(rtts), "rtts_ms": rtts, "error": self.error}


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def echo_request(ident: int, seq: int, token: int, now_ns: int) -> bytes:
    payload = _PAYLOAD.pack(token, now_ns)
    csum = checksum(_HDR.pack(ECHO_REQUEST, 0, 0, ident, seq) + payload)
    return _HDR.pack(ECHO_REQUEST, 0, csum, ident, seq) + payload


def parse_reply(packet: bytes, token: int) -> tuple[int, int, int] | None:
    """(ident, seq, send time ns) of one of OUR echo replies (raw sockets get the IP header too), else None."""
    if len(packet) < 20:
        return None
    ihl = (packet[0] & 0x0F) * 4
    icmp = packet[ihl:]
    if len(icmp) < _HDR.size + _PAYLOAD.size:
        return None
    typ, _code, _csum, ident, seq = _HDR.unpack_from(icmp)
    if typ != ECHO_REPLY:
        return None
    tok, sent_ns = _PAYLOAD.unpack_from(icmp, _HDR.size)
    if tok != token:
        return None  # another prober's reply (a test's `ping`, a second audit) in the same namespace
    return ident, seq, sent_ns


def _raw_socket() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    try:
        s.setsockopt(socket.SOL_SOCKET, 33, RCVBUF)  # SO_RCVBUFFORCE (root): above net.core.rmem_max
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
    try:
        s.setsockopt(socket.SOL_SOCKET, 32, SNDBUF)  # SO_SNDBUFFORCE (root)
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SNDBUF)
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    s.setsockopt(SOL_RAW, ICMP_FILTER, struct.pack("I", ~(1 << ECHO_REPLY) & 0xFFFFFFFF))
    s.setblocking(False)
    return s


def open_socket(netns: str | None) -> socket.socket:
    """A raw ICMP socket living in `netns` (a named `ip netns`), created from a short-lived thread.

    A socket stays in the namespace it was created in; `setns` changes only the calling thread, so the thread
    that entered the namespace simply ends and the process never leaves its own.
    """
    if netns is None:
        return _raw_socket()
    box: dict[str, Any] = {}

    def enter() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns into {netns}: {os.strerror(err)}")
            finally:
                os.close(fd)
            box["sock"] = _raw_socket()
        except OSError as exc:
            box["error"] = exc

    t = threading.Thread(target=enter)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["sock"]  # type: ignore[no-any-return]


PARALLEL = 48  # links probed at the same moment: 4 800 probes/s (+ replies), whatever the province's size


def run_bursts(bursts: list[Burst], count: int, interval: float, wait: float,
               parallel: int = PARALLEL) -> list[Burst]:
    """Send `count` probes `interval` apart to every burst's address, then wait up to `wait` s for late replies.

    Why at most `parallel` links at once: every probe and reply crosses the kernel's per-CPU input backlog (1 000
    packets); every link at once (420 × 100 probes/s in the full lab) overflows it as soon as a busy machine
    delays the softirq thread by a few milliseconds, and the drops would be judged as the links' loss. The bursts
    run beside the SSH sessions, so the waves cost no wall time.
    """
    token = int.from_bytes(os.urandom(4), "big")
    socks: dict[str | None, socket.socket] = {}
    failed: dict[str | None, str] = {}
    by_ns: dict[str | None, dict[int, Burst]] = {}
    for b in bursts:
        if b.netns not in socks and b.netns not in failed:
            try:
                socks[b.netns] = open_socket(b.netns)
            except OSError as exc:
                failed[b.netns] = f"cannot probe from {b.netns or 'this machine'}: {exc.strerror or exc}"
        if b.netns in failed:
            b.error = failed[b.netns]
            continue
        ids = by_ns.setdefault(b.netns, {})
        b.ident = (os.getpid() + len(ids) * 7919) & 0xFFFF
        while b.ident in ids:
            b.ident = (b.ident + 1) & 0xFFFF
        ids[b.ident] = b
    live = [b for b in bursts if b.error is None]
    w = max(1, min(parallel, len(live)))
    # (due time, burst, seq): at most `parallel` links at once, in waves of one burst length; inside a wave link k
    # is offset by k/w of an interval, so sends spread evenly over time
    schedule = sorted(((k // w) * count * interval + (k % w) * interval / w + i * interval, k, seq)
                      for k in range(len(live)) for i, seq in enumerate(range(1, count + 1)))
    fd_ns = {s.fileno(): ns for ns, s in socks.items()}
    poller = select.poll()
    for s in socks.values():
        poller.register(s, select.POLLIN)
    t0 = time.monotonic()
    nxt = 0
    end = float("inf")  # the last send + `wait`: a prober that got little CPU still waits for its late replies
    while True:
        now = time.monotonic()
        busy = False
        while nxt < len(schedule) and schedule[nxt][0] <= now - t0:
            _, k, seq = schedule[nxt]
            b = live[k]
            sock = socks[b.netns]
            stamp = time.time_ns()
            try:
                sock.sendto(echo_request(b.ident, seq, token, stamp), (b.address, 0))
                b.sent_at[seq] = stamp
            except BlockingIOError:
                # Our send buffer is full (the receiving side's softirq has not consumed earlier frames yet):
                # the probe has NOT left and must not count as lost; it goes out as soon as there is room.
                busy = True
                break
            except OSError as exc:  # no route, network unreachable: the probe left nowhere, as ping counts it
                b.sent_at[seq] = stamp
                if b.error is None and exc.errno not in (101, 113, 111):
                    b.error = f"send to {b.address} failed: {exc.strerror}"
            b.sent += 1
            nxt += 1
            if nxt == len(schedule):
                end = time.monotonic() + wait
        done_sending = nxt >= len(schedule)
        if done_sending and (time.monotonic() >= end or all(len(b.rtts_ms) == b.sent for b in live)):
            break
        due = schedule[nxt][0] + t0 if not done_sending else end
        timeout_ms = 1 if busy else max(0, int((due - time.monotonic()) * 1000))
        for fd, _ in poller.poll(timeout_ms):
            _drain(socks[fd_ns[fd]], by_ns.get(fd_ns[fd], {}), token)
    for ns, s in socks.items():
        _drain(s, by_ns.get(ns, {}), token)  # what arrived while we were deciding to stop
        s.close()
    return bursts


def _drain(sock: socket.socket, ids: dict[int, Burst], token: int) -> None:
    while True:
        try:
            data, anc, _flags, _addr = sock.recvmsg(256, socket.CMSG_SPACE(16))
        except (BlockingIOError, InterruptedError):
            return
        got = parse_reply(data, token)
        if got is None:
            continue
        ident, seq, sent_ns = got
        b = ids.get(ident)
        if b is None or seq not in b.sent_at or seq in b.rtts_ms or b.sent_at[seq] != sent_ns:
            continue
        rx = time.time_ns()
        for level, typ, val in anc:
            if level == socket.SOL_SOCKET and typ == SCM_TIMESTAMPNS and len(val) >= 16:
                sec, nsec = struct.unpack("qq", val[:16])
                rx = sec * 1_000_000_000 + nsec
        b.rtts_ms[seq] = round(max(0, rx - sent_ns) / 1e6, 3)


def bursts_from(doc: dict[str, Any]) -> list[Burst]:
    return [Burst(str(t["key"]), str(t["address"]), t.get("netns")) for t in doc["targets"]]


def main(argv: Iterable[str] | None = None) -> int:
    """stdin: {"count", "interval", "wait", "targets": [{"key", "address", "netns"}]}; stdout: {"results": […]}."""
    doc = json.load(sys.stdin)
    bursts = run_bursts(bursts_from(doc), int(doc["count"]), float(doc["interval"]), float(doc["wait"]),
                        int(doc.get("parallel", PARALLEL)))
    json.dump({"results": [b.result() for b in bursts]}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
