"""The agent's HTTP calls with its site token: heartbeat, its schedule, a join token for one meeting.

Network trouble is :class:`Unreachable` (the caller retries with backoff); a 401 is :class:`TokenRejected`
(revoked token or unknown site: the agent stops); a 403/404/422 on a join token is :class:`MeetingGone`
(the meeting changed under us: back to the schedule).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from meeting.agent.config import AgentConfig, AgentError, TokenRejected

logger = logging.getLogger(__name__)

AGENT_VERSION = "1"


class Unreachable(AgentError):
    """The server cannot be reached or answered 5xx: retry later."""


class MeetingGone(AgentError):
    """The server refuses a join token for this meeting (cancelled, no longer invited, deleted)."""


@dataclass(frozen=True)
class Slot:
    """One occurrence of a meeting this site takes part in."""

    meeting_id: int
    title: str
    start: datetime
    end: datetime
    host: bool
    occurrence_id: int = 0
    join_now: bool = False
    """The console started the meeting (or a rehearsal): join at once, even before ``start``."""


class ServerApi:
    """A small async client; one per agent, closed with :meth:`close`."""

    def __init__(self, cfg: AgentConfig, connect_s: float = 3.0, read_s: float = 15.0) -> None:
        self._cfg = cfg
        self._client = httpx.AsyncClient(
            base_url=cfg.server,
            headers={"Authorization": f"Bearer {cfg.token}", "User-Agent": f"lienthong-agent/{AGENT_VERSION}"},
            # connect fails fast when the link is down; a busy server (129 rooms starting at once) gets time to
            # answer instead of a retry that adds to its queue
            timeout=httpx.Timeout(read_s, connect=connect_s),
            trust_env=False,  # a room PC's proxy variables must not route province traffic elsewhere
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def _call(self, method: str, path: str, json: dict[str, Any] | None = None) -> Any:
        try:
            reply = await self._client.request(method, path, json=json)
        except httpx.HTTPError as exc:
            raise Unreachable("Không kết nối được máy chủ {server}: {error}", server=self._cfg.server,
                              error=type(exc).__name__) from None
        if reply.status_code == 401:
            raise TokenRejected(self._cfg.site)
        if reply.status_code in (403, 404, 409, 410, 422):
            raise MeetingGone("Máy chủ từ chối yêu cầu {path}: HTTP {status}", path=path, status=reply.status_code)
        if reply.status_code >= 400:
            raise Unreachable("Máy chủ {server} trả lời HTTP {status}", server=self._cfg.server,
                              status=reply.status_code)
        return reply.json()

    async def heartbeat(self, status: str, meeting_id: int | None, detail: dict[str, Any]) -> str:
        """Report liveness (readiness shows it); returns the site the server says the token belongs to."""
        body = {"agent_version": AGENT_VERSION, "status": status, "meeting_id": meeting_id, "detail": detail}
        doc = await self._call("POST", "/api/v1/agents/heartbeat", body)
        return str(doc.get("site"))

    async def schedule(self) -> list[Slot]:
        docs = await self._call("GET", "/api/v1/agents/meetings")
        return [
            Slot(int(d["meeting_id"]), str(d["title"]), datetime.fromisoformat(d["start"]),
                 datetime.fromisoformat(d["end"]), bool(d["host"]), int(d.get("occurrence_id") or 0),
                 bool(d.get("join_now")))
            for d in docs
        ]

    async def join_token(self, meeting_id: int) -> str:
        doc = await self._call("POST", f"/api/v1/meetings/{meeting_id}/join-token")
        return str(doc["token"])
