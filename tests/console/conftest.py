"""Fixtures reused, not copied: the meeting service with one user per role and the real ``meeting serve`` for the
browser (tests/meeting), and the agent lab world (tests/agent: small lab up, routers deployed, ``meeting serve``
on srv-dien-bien, 10 commune placements)."""

from tests.agent.test_agent_lab import world
from tests.meeting.conftest import service
from tests.meeting.test_browser import server

__all__ = ["server", "service", "world"]
