"""Every probe burst of an audit from one process: one raw ICMP socket per source namespace, all links at once.

Why not one `ping` per link: each `ping` is a process (`ip netns exec` + iputils), and every raw ICMP socket of
a namespace receives a copy of every ICMP reply of that namespace, so 140 bursts from the ISP side mean 140
sockets each reading 14 000 replies/s and dropping some on a busy host — the bursts had to be run 16 at a time
(about nine seconds for the full province). Here a source namespace has ONE socket: it sends every link's
burst interleaved (link k starts k/n of an interval late), tells replies apart by ICMP id/sequence and a
per-run token in the payload, and reads the receive time the kernel stamped on each reply (SO_TIMESTAMPNS), so a
busy process delays neither the measured RTT nor the jitter. The 420 bursts of the full province take about nine
seconds, beside the SSH sessions.

A burst that lost probes while this machine's kernel dropped packets itself (full ARP table, input backlog,
our socket's queue: `conftool.audit.kernel`) is sent once more and, if still disturbed, flagged so the audit
reports `error` instead of judging the link.

It runs as its own process (`python -m conftool.audit.icmp`, JSON on stdin/stdout) so that the audit's SSH
threads never hold the interpreter lock while a probe is due. Needs root (raw sockets; entering a lab
namespace); without root the audit keeps using iputils `ping` (`conftool.audit.probes`).
"""

from __future__ import annotations

import contextlib
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

from conftool.audit.kernel import drop_counters, moved

CLONE_NEWNET = 0x40000000
SO_RXQ_OVFL = getattr(socket, "SO_RXQ_OVFL", 40)  # each reply carries how many packets our socket dropped
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
    # our own kernel's drop counters that grew while this burst lost probes: its loss may be ours (kernel.py)
    disturbed: dict[str, int] = field(default_factory=dict)
    retried: bool = False

    def result(self) -> dict[str, Any]:
        rtts = [self.rtts_ms[s] for s in sorted(self.rtts_ms)]  # in sending order, as jitter needs
        return {"key": self.key, "sent": self.sent, "received": len(rtts), "rtts_ms": rtts, "error": self.error,
                "disturbed": self.disturbed, "retried": self.retried}


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


def _raw_socket(rcvbuf: int = RCVBUF) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    try:
        s.setsockopt(socket.SOL_SOCKET, 33, rcvbuf)  # SO_RCVBUFFORCE (root): above net.core.rmem_max
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    try:
        s.setsockopt(socket.SOL_SOCKET, 32, SNDBUF)  # SO_SNDBUFFORCE (root)
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SNDBUF)
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    with contextlib.suppress(OSError):  # old kernels: the socket's own drops are then not seen
        s.setsockopt(socket.SOL_SOCKET, SO_RXQ_OVFL, 1)
    s.setsockopt(SOL_RAW, ICMP_FILTER, struct.pack("I", ~(1 << ECHO_REPLY) & 0xFFFFFFFF))
    s.setblocking(False)
    return s


def open_socket(netns: str | None, rcvbuf: int = RCVBUF) -> socket.socket:
    """A raw ICMP socket living in `netns` (a named `ip netns`), created from a short-lived thread.

    A socket stays in the namespace it was created in; `setns` changes only the calling thread, so the thread
    that entered the namespace simply ends and the process never leaves its own.
    """
    if netns is None:
        return _raw_socket(rcvbuf)
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
            box["sock"] = _raw_socket(rcvbuf)
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
               parallel: int = PARALLEL, rcvbuf: int = RCVBUF) -> list[Burst]:
    """Send `count` probes `interval` apart to every burst's address, then wait up to `wait` s for late replies.

    Why at most `parallel` links at once: every probe and reply crosses the kernel's per-CPU input backlog (1 000
    packets); every link at once (420 × 100 probes/s in the full lab) overflows it as soon as a busy machine
    delays the softirq thread by a few milliseconds, and the drops would be judged as the links' loss. The bursts
    run beside the SSH sessions, so the waves cost no wall time.
    """
    token = int.from_bytes(os.urandom(4), "big")
    counters0 = drop_counters()
    overflow: dict[int, int] = {}  # socket fd -> packets it dropped (SO_RXQ_OVFL, cumulative per socket)
    socks: dict[str | None, socket.socket] = {}
    failed: dict[str | None, str] = {}
    by_ns: dict[str | None, dict[int, Burst]] = {}
    for b in bursts:
        if b.netns not in socks and b.netns not in failed:
            try:
                socks[b.netns] = open_socket(b.netns, rcvbuf)
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
            _drain(socks[fd_ns[fd]], by_ns.get(fd_ns[fd], {}), token, overflow)
    for ns, s in socks.items():
        _drain(s, by_ns.get(ns, {}), token, overflow)  # what arrived while we were deciding to stop
        s.close()
    deltas = moved(counters0, drop_counters())
    if sum(overflow.values()):
        deltas["socket_drops"] = sum(overflow.values())
    for b in live:
        b.disturbed = suspect(deltas, b.sent, len(b.rtts_ms))
    return bursts


def suspect(deltas: dict[str, int], sent: int, received: int) -> dict[str, int]:
    """The own-drop counters that may explain a burst's loss (empty: its loss, if any, is the link's).

    A burst that lost nothing is valid whatever else happened. A full ARP table or our socket's overflow
    explains any loss. Input-backlog drops are common on a busy machine and not ours alone, so they explain
    only a partial loss no larger than them: a link that answered nothing is not excused by them.
    """
    lost = sent - received
    if lost <= 0:
        return {}
    return {k: n for k, n in deltas.items() if k != "backlog_drops" or (received > 0 and n >= lost)}


def probe_all(bursts: list[Burst], count: int, interval: float, wait: float, parallel: int = PARALLEL,
              retries: int = 1, rcvbuf: int = RCVBUF) -> list[Burst]:
    """`run_bursts`, then the bursts that lost probes while this machine dropped packets itself are sent again.

    A retry runs at half the parallelism, so it takes less of the machine. Whatever the last attempt measured
    is kept; if it is still disturbed it says so (`disturbed`), and the audit reports `error`, never `fail`.
    """
    done = run_bursts(bursts, count, interval, wait, parallel, rcvbuf)
    for _ in range(retries):
        again = [b for b in done if b.disturbed and b.error is None]
        if not again:
            break
        fresh = run_bursts([Burst(b.key, b.address, b.netns) for b in again], count, interval, wait,
                           max(1, parallel // 2), rcvbuf)
        by_key = {b.key: b for b in fresh}
        for b in fresh:
            b.retried = True
        done = [by_key.get(b.key, b) for b in done]
    return done


def _drain(sock: socket.socket, ids: dict[int, Burst], token: int, overflow: dict[int, int]) -> None:
    while True:
        try:
            data, anc, _flags, _addr = sock.recvmsg(256, socket.CMSG_SPACE(16) + socket.CMSG_SPACE(4))
        except (BlockingIOError, InterruptedError):
            return
        for level, typ, val in anc:
            if level == socket.SOL_SOCKET and typ == SO_RXQ_OVFL and len(val) >= 4:
                overflow[sock.fileno()] = max(overflow.get(sock.fileno(), 0), struct.unpack("I", val[:4])[0])
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
    """stdin: {"count", "interval", "wait", "targets": [{"key", "address", "netns"}], optional "parallel",
    "retries", "rcvbuf"}; stdout: {"results": […]} (each with `disturbed`: our kernel's drop counters that grew)."""
    doc = json.load(sys.stdin)
    bursts = probe_all(bursts_from(doc), int(doc["count"]), float(doc["interval"]), float(doc["wait"]),
                       int(doc.get("parallel", PARALLEL)), int(doc.get("retries", 1)),
                       int(doc.get("rcvbuf", RCVBUF)))
    json.dump({"results": [b.result() for b in bursts]}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
