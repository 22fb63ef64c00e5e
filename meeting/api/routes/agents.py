"""The room agent's side: heartbeats and short-lived per-meeting join tokens, authenticated by site token."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter

from meeting.api.deps import IdPath, SessionDep, SettingsDep, SiteAgent
from meeting.errors import Forbidden, InvalidInput
from meeting.models import MeetingStatus
from meeting.schemas import HeartbeatIn, HeartbeatOut, JoinTokenOut
from meeting.services import auth, readiness
from meeting.services import meetings as svc
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
