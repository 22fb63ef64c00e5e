"""The signaling conversation without a network: message validation, permissions, replies.

Offers that lead to real connections are exercised inside the test namespace (test_scenarios: every peer there
talks through a SignalingSession); here only what needs no ICE gathering.
"""

from __future__ import annotations

import asyncio
from typing import Any

from meeting.media.sfu import Sfu
from meeting.media.signaling import CLIENT_MESSAGES, SERVER_MESSAGES, SignalingSession


def _conversation(messages: list[Any], *, is_host: bool = False) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        sfu = Sfu()
        await sfu.start()
        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        session = SignalingSession(sfu, "meeting-7", "03127", send, is_host=is_host)
        await session.open()
        for message in messages:
            await session.handle(message)
        await session.close()
        await sfu.stop()
        await sfu.stop()  # idempotent
        return sent

    return asyncio.run(run())


def _shape_ok(message: dict[str, Any]) -> None:
    assert message["type"] in SERVER_MESSAGES
    for name in SERVER_MESSAGES[message["type"]]:
        assert name in message, (message, name)


def test_welcome_ping_and_leave() -> None:
    sent = _conversation([{"type": "ping"}, {"type": "leave"}])
    assert [m["type"] for m in sent] == ["welcome", "pong", "bye"]
    assert sent[0] == {"type": "welcome", "protocol": 1, "room": "meeting-7", "site": "03127", "host": False}
    for m in sent:
        _shape_ok(m)


def test_bad_messages_get_clear_errors_and_the_session_survives() -> None:
    sent = _conversation([
        "not json object",
        {"no": "type"},
        {"type": "dance"},
        {"type": "offer"},
        {"type": "candidate", "candidate": "candidate:1 1 udp 1 10.99.0.5 5000 typ host"},
        {"type": "ping"},
    ])
    errors = [m for m in sent if m["type"] == "error"]
    assert len(errors) == 5
    for m in errors:
        _shape_ok(m)
        assert m["code"] == "SignalingError"
    assert "type" in errors[0]["reason"]
    assert "dance" in errors[2]["reason"]
    assert "sdp" in errors[3]["reason"]
    assert "offer" in errors[4]["reason"]
    assert sent[-1] == {"type": "pong"}


def test_only_the_host_hall_moves_the_floor() -> None:
    sent = _conversation([{"type": "floor", "action": "grant", "site": "03124"}])
    assert sent[-1]["type"] == "error" and "chủ trì" in sent[-1]["reason"]
    sent = _conversation([
        {"type": "floor", "action": "grant"},
        {"type": "floor", "action": "shout"},
        {"type": "floor", "action": "grant", "site": "03124"},
    ], is_host=True)
    reasons = [m["reason"] for m in sent if m["type"] == "error"]
    assert len(reasons) == 3
    assert "site" in reasons[0] and "shout" in reasons[1]
    assert "meeting-7" in reasons[2]  # no room yet: nobody has joined


def test_an_offer_without_media_is_refused() -> None:
    sent = _conversation([{"type": "offer", "sdp": "v=0\r\n"}])
    assert sent[-1]["type"] == "error" and sent[-1]["code"] == "MediaError"


def test_schema_is_documented() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "media.md").read_text()
    for name in [*CLIENT_MESSAGES, *SERVER_MESSAGES]:
        assert f"`{name}`" in doc, f"message type {name} missing from docs/media.md"
