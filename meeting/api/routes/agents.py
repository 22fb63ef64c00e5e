"""The room agent's side: heartbeats, its schedule and short-lived per-meeting join tokens, by site token."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request
from pydantic import BaseModel

from meeting.api.deps import IdPath, SessionDep, SettingsDep, SiteAgent
from meeting.errors import Forbidden, InvalidInput
from meeting.models import MeetingStatus, utcnow
from meeting.schemas import HeartbeatIn, HeartbeatOut, JoinTokenOut
from meeting.services import auth, readiness
from meeting.services import meetings as svc
from meeting.services.live import get_live
from meeting.services.recurrence import to_local

router = APIRouter(prefix="/api/v1", tags=["agents"])


@router.post("/agents/heartbeat")
def heartbeat(body: HeartbeatIn, site: SiteAgent, db: SessionDep) -> HeartbeatOut:
    hb = readiness.record_heartbeat(db, site.id, body.model_dump(mode="json"))
    db.commit()
    return HeartbeatOut(site=site.id, received_at=to_local(hb.last_seen))


@router.post("/meetings/{meeting_id}/join-token")
def join_token(meeting_id: IdPath, site: SiteAgent, db: SessionDep, settings: SettingsDep) -> JoinTokenOut:
    m = svc.get(db, meeting_id)
    if site.id not in m.site_ids:
        raise Forbidden("Điểm cầu không tham dự cuộc họp này")
    if m.status == MeetingStatus.CANCELLED.value:
        raise InvalidInput("Cuộc họp đã bị hủy, không thể sửa", field="id")
    token, claims = auth.make_join_token(auth.signing_key(db), m.id, site.id, settings.join_token_ttl_s)
    db.commit()
    return JoinTokenOut(
        token=token,
        meeting_id=m.id,
        site=site.id,
        expires_at=to_local(datetime.fromtimestamp(claims.expires, UTC)),
    )


class AgentMeetingOut(BaseModel):
    meeting_id: int
    occurrence_id: int
    title: str
    start: datetime
    end: datetime
    host_site: str
    host: bool
    join_now: bool = False
    """True while the meeting is in rehearsal or live (started from the console): join at once, even early."""


@router.get("/agents/meetings")
def agent_meetings(site: SiteAgent, db: SessionDep, settings: SettingsDep, request: Request) -> list[AgentMeetingOut]:
    """This site's meetings that are running or start within 7 days, soonest first (what the agent joins)."""
    now = utcnow()
    control = get_live(request.app.state)
    rows = svc.occurrences_between(db, now, now + timedelta(days=7), site_id=site.id, include_cancelled=False,
                                   limit=50)
    out = [
        AgentMeetingOut(
            meeting_id=m.id,
            occurrence_id=o.id,
            title=m.title,
            start=to_local(o.start_at),
            end=to_local(o.end_at),
            host_site=m.host_site_id,
            host=m.host_site_id == site.id,
            join_now=control.join_now(db, m, o.id),
        )
        for o, m in rows
    ]
    # End the transaction here, in the worker thread: the connection goes back to the pool now, not when the
    # session dependency is torn down (which needs another thread; 129 agents polling at once exhausted the pool).
    db.rollback()
    return out
