"""Live control of a meeting (issue 11): the ``/live`` document and the secretariat's actions on it.

Admin and secretariat act (start, stop, rehearsal, floor, mute, remove); a site operator may read the document
(only their own site's row) and raise or lower their own site's hand. Every action returns the new document, so
the console redraws from the answer. The work is in :mod:`meeting.services.live`; these routes are ``async``
because they touch the SFU and the signaling sockets, which live on the event loop (database work goes to the
worker threads there).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from meeting.api.deps import AnyUser, IdPath, Scheduler, SitePath
from meeting.models import User
from meeting.services.live import LiveService, get_live

router = APIRouter(prefix="/api/v1/meetings", tags=["live"])

SiteId = Annotated[str, Field(min_length=1, max_length=8, pattern=r"^\d+$")]


class RehearsalIn(BaseModel):
    seconds: int = Field(5, ge=2, le=60, description="how long every site publishes its camera and microphone")


class FloorIn(BaseModel):
    site: SiteId


class MuteIn(BaseModel):
    site: SiteId | None = Field(None, description="null: every site but the host hall")
    muted: bool = True


class HandIn(BaseModel):
    site: SiteId
    raised: bool = True


def _live(request: Request) -> LiveService:
    return get_live(request.app.state)


def _actor(user: User) -> str:
    return user.username


@router.get("/{meeting_id}/live")
async def live_document(meeting_id: IdPath, user: AnyUser, request: Request) -> dict[str, Any]:
    """State, floor holder and every invited site: connection state, hand, mute, link figures, rehearsal result."""
    live = _live(request)
    return live.document(await live.meeting(meeting_id, user), user)


@router.post("/{meeting_id}/live/start")
async def live_start(meeting_id: IdPath, user: Scheduler, request: Request) -> dict[str, Any]:
    """Start now: the agents' schedule says ``join_now`` and the rooms join even before the scheduled time."""
    live = _live(request)
    ml = await live.meeting(meeting_id, user)
    await live.start(ml, _actor(user))
    return live.document(ml, user)


@router.post("/{meeting_id}/live/stop")
async def live_stop(meeting_id: IdPath, user: Scheduler, request: Request) -> dict[str, Any]:
    """End this occurrence: every site is told ``ended`` (close 4413) and does not rejoin it."""
    live = _live(request)
    ml = await live.meeting(meeting_id, user)
    await live.stop(ml, _actor(user))
    return live.document(ml, user)


@router.post("/{meeting_id}/live/rehearsal")
async def live_rehearsal(meeting_id: IdPath, user: Scheduler, request: Request,
                         body: RehearsalIn | None = None) -> dict[str, Any]:
    """Chạy thử: every connected site sends camera + microphone for N s; results appear per site in ``/live``."""
    live = _live(request)
    ml = await live.meeting(meeting_id, user)
    await live.rehearsal(ml, _actor(user), (body or RehearsalIn()).seconds)
    return live.document(ml, user)


@router.post("/{meeting_id}/floor")
async def floor_grant(meeting_id: IdPath, body: FloorIn, user: Scheduler, request: Request) -> dict[str, Any]:
    """Give the floor to a connected site (its hand goes down); everyone then sees and hears it."""
    live = _live(request)
    ml = await live.meeting(meeting_id, user)
    if body.site == ml.host_site:
        await live.revoke(ml, _actor(user))
    else:
        await live.grant(ml, _actor(user), body.site)
    return live.document(ml, user)


@router.delete("/{meeting_id}/floor")
async def floor_revoke(meeting_id: IdPath, user: Scheduler, request: Request) -> dict[str, Any]:
    """The floor back to the host hall."""
    live = _live(request)
    ml = await live.meeting(meeting_id, user)
    await live.revoke(ml, _actor(user))
    return live.document(ml, user)


@router.post("/{meeting_id}/mute")
async def mute(meeting_id: IdPath, body: MuteIn, user: Scheduler, request: Request) -> dict[str, Any]:
    """Mute (or unmute) one site, or every site but the host hall; the SFU stops forwarding their audio."""
    live = _live(request)
    ml = await live.meeting(meeting_id, user)
    await live.mute(ml, _actor(user), body.site, body.muted)
    return live.document(ml, user)


@router.post("/{meeting_id}/sites/{site_id}/remove")
async def remove_site(meeting_id: IdPath, site_id: SitePath, user: Scheduler, request: Request) -> dict[str, Any]:
    """Send a site out of this occurrence (close 4412); it cannot rejoin until the next one."""
    live = _live(request)
    ml = await live.meeting(meeting_id, user)
    await live.remove(ml, _actor(user), site_id)
    return live.document(ml, user)


@router.post("/{meeting_id}/hand")
async def hand(meeting_id: IdPath, body: HandIn, user: AnyUser, request: Request) -> dict[str, Any]:
    """Raise or lower a site's hand (an operator: only their own site's)."""
    live = _live(request)
    live.check_operator(user, body.site)
    ml = await live.meeting(meeting_id, user)
    await live.hand(ml, _actor(user), body.site, body.raised)
    return live.document(ml, user)


@router.get("/{meeting_id}/events")
async def events(meeting_id: IdPath, user: AnyUser, request: Request,
                 limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[dict[str, Any]]:
    """What happened in the meeting, newest first (an operator: only their own site's events)."""
    live = _live(request)

    def read() -> list[dict[str, Any]]:
        with request.app.state.sessions() as db:
            return live.events(db, user, meeting_id, limit)

    return await run_in_threadpool(read)
