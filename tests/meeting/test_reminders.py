"""Reminders through a real local SMTP server (aiosmtpd on 127.0.0.1) and a local HTTP webhook receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from email import message_from_bytes
from email.header import decode_header, make_header
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from meeting.services import reminders
from tests.meeting.conftest import Service, future, meeting_body


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Controller, _Inbox]]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    inbox = _Inbox()
    ctl = Controller(inbox, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        yield ctl, inbox
    finally:
        ctl.stop()


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    got: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    srv = HTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/hook", got
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(5)


def test_email_and_webhook_once(
    service: Service,
    smtp: tuple[Controller, _Inbox],
    webhook: tuple[str, list[dict[str, Any]]],
    reference_inventory: Path,
) -> None:
    ctl, inbox = smtp
    url, hooks = webhook
    h = service.h("secretariat")
    soon = future(days=0, hour=0) + timedelta(days=1)  # tomorrow 00:00 local, always in the future
    due_m = service.client.post(
        "/api/v1/meetings",
        json=meeting_body(soon, hours=1, reminder_minutes=60 * 48, participants=["03158", "03160"]),
        headers=h,
    ).json()
    later = service.client.post(
        "/api/v1/meetings", json=meeting_body(future(days=20), reminder_minutes=30), headers=h
    ).json()
    settings = replace(service.settings, smtp_host="127.0.0.1", smtp_port=ctl.port, webhook_url=url)
    with service.session() as s:
        sent = reminders.run_once(s, settings)
    assert {(r.channel, r.ok) for r in sent} == {("email", True), ("webhook", True)}
    assert len(inbox.messages) == 1
    rcpts, msg = inbox.messages[0]
    from conftool.inventory import load

    inv = load(reference_inventory)
    want = {c.email for sid in ("11", "03158", "03160") for c in inv.get(sid).contacts if c.email}
    assert want and set(rcpts) == want
    assert "Giao ban tuần" in str(make_header(decode_header(msg["Subject"])))
    assert (
        len(hooks) == 1 and hooks[0]["meeting_id"] == due_m["id"] and hooks[0]["event"] == "meeting.reminder"
    )
    assert later["id"] not in {x["meeting_id"] for x in hooks}
    with service.session() as s:
        assert reminders.run_once(s, settings) == []  # never twice
    assert len(inbox.messages) == 1 and len(hooks) == 1


def test_failed_delivery_is_retried(service: Service, smtp: tuple[Controller, _Inbox]) -> None:
    ctl, inbox = smtp
    soon = future(days=0, hour=0) + timedelta(days=1)
    service.client.post(
        "/api/v1/meetings",
        json=meeting_body(soon, hours=1, reminder_minutes=60 * 48),
        headers=service.h("secretariat"),
    )
    import socket

    with socket.socket() as sock:  # a closed port on loopback: the first round fails
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    with service.session() as s:
        first = reminders.run_once(s, replace(service.settings, smtp_host="127.0.0.1", smtp_port=dead))
    assert [(r.channel, r.ok) for r in first] == [("email", False)]
    with service.session() as s:
        second = reminders.run_once(s, replace(service.settings, smtp_host="127.0.0.1", smtp_port=ctl.port))
    assert [(r.channel, r.ok) for r in second] == [("email", True)] and len(inbox.messages) == 1
