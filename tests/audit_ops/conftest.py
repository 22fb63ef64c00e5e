"""Fixtures of the audit tests: synthetic runs over the reference inventory, an injectable clock, and real
local receivers for alerts (an aiosmtpd SMTP server and an HTTP server, both on 127.0.0.1 only)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from conftool.audit.results import Finding, RunRecord, Status
from conftool.inventory import Inventory, load

# a small, fixed slice of the province: the province, two districts and four of their communes
SITES = ["11", "095", "096", "03148", "03151", "03154", "03155"]
KINDS = ("lan", "internet", "dedicated")


def make_run(at: datetime, faults: dict[tuple[str, str], Status] | None = None, *, sites: list[str] | None = None,
             compliance_fail: set[str] | None = None, degraded: set[tuple[str, str]] | None = None,
             minutes: float = 2.0) -> RunRecord:
    """A run as the runner would store it: three reachability findings and one compliance rule per site.

    `faults` sets a link's status (down: no reply); `degraded` links fail their thresholds but are up.
    """
    faults = faults or {}
    findings: list[Finding] = []
    for sid in sites or SITES:
        for kind in KINDS:
            st = faults.get((sid, kind), Status.OK)
            up = st == Status.OK
            if (sid, kind) in (degraded or set()):
                st, up = Status.FAIL, True
            findings.append(Finding(sid, "reachability", kind, st,
                                    detail="RTT 12 ms" if st == Status.OK else "no reply from 172.16.0.1",
                                    severity="high", data={"up": up, "rtt_ms": 12.0 if up else None,
                                                           "loss_pct": 0.0 if up else 100.0, "jitter_ms": 1.0}))
        bad = sid in (compliance_fail or set())
        findings.append(Finding(sid, "compliance", "LT-NTP-01", Status.FAIL if bad else Status.OK,
                                detail="no ntp server 10.11.0.11" if bad else "", device=f"rt-{sid}",
                                data={"fix": "ntp server 10.11.0.11"} if bad else {}))
    return RunRecord(at, at + timedelta(minutes=minutes), "all", ["reachability", "compliance"], findings, "11")


@pytest.fixture(scope="session")
def inv(reference_inventory: Path) -> Inventory:
    return load(reference_inventory)


@pytest.fixture
def fresh_inv(reference_inventory: Path) -> Inventory:
    """A private copy, for tests that change site vars (maintenance windows)."""
    return load(reference_inventory)


class FakeClock:
    """An injectable clock: `wait` moves time forward at once (tests never wait real minutes)."""

    def __init__(self, start: datetime) -> None:
        self.t = start
        self.waits: list[float] = []

    def now(self) -> datetime:
        return self.t

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        if stop.is_set():
            return True
        self.waits.append(seconds)
        self.t += timedelta(seconds=seconds)
        return stop.is_set()

    def advance(self, **kw: float) -> None:
        self.t += timedelta(**kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Mailbox:
    host: str
    port: int
    messages: list[EmailMessage] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"


class _Handler:
    def __init__(self, box: Mailbox) -> None:
        self.box = box

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        msg["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.box.messages.append(msg)
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[Mailbox]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1, stopped after the test."""
    box = Mailbox("127.0.0.1", free_port())
    ctl = Controller(_Handler(box), hostname=box.host, port=box.port)
    ctl.start()
    try:
        yield box
    finally:
        ctl.stop()


@dataclass
class Receiver:
    url: str
    posts: list[dict[str, Any]] = field(default_factory=list)
    fail: bool = False  # answer 503 while set: a broken channel


@pytest.fixture
def http_receiver() -> Iterator[Receiver]:
    """A real HTTP server on 127.0.0.1 that records JSON POSTs (the webhook end of a chat bridge)."""
    port = free_port()
    rec = Receiver(f"http://127.0.0.1:{port}/hook")

    class H(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if rec.fail:
                self.send_response(503)
                self.end_headers()
                return
            rec.posts.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", port), H)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    try:
        yield rec
    finally:
        srv.shutdown()
        srv.server_close()
        th.join(5)
