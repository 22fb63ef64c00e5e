"""TURN credentials for clients behind NAT: short-lived coturn REST-API credentials for a site or a logged-in user."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from meeting.api.deps import ALL_ROLES, SessionDep, SettingsDep, _bearer, get_principal, require, site_agent
from meeting.media import turn
from meeting.services import auth
from meeting.services.recurrence import to_local

router = APIRouter(prefix="/api/v1", tags=["turn"])


_any_user = require(*ALL_ROLES)


async def site_or_user(request: Request, db: SessionDep) -> str:
    """Who asks, as the identity put in the TURN username: ``site:<id>`` (site token) or ``user:<name>``.

    The two halves are deps' own checks (``site_agent``, ``require``), so the rules stay in one place."""
    token = _bearer(request)
    if token is not None and token.startswith(auth.SITE_TOKEN_PREFIX):
        site = await run_in_threadpool(site_agent, request, db)  # it writes last_used_at: off the event loop
        return f"site:{site.id}"
    user = await _any_user(await get_principal(request, db))
    return f"user:{user.username}"


site_or_user.policy = ("site", *(r.value for r in ALL_ROLES))  # type: ignore[attr-defined]
Caller = Annotated[str, Depends(site_or_user)]


class IceServerOut(BaseModel):
    urls: list[str]
    username: str
    credential: str
    credentialType: str = "password"


class TurnOut(BaseModel):
    iceServers: list[IceServerOut] = Field(description="Pass to RTCPeerConnection({iceServers}); empty = no TURN")
    ttl: int
    expires_at: datetime | None


@router.get("/turn")
def turn_credentials(caller: Caller, settings: SettingsDep) -> TurnOut:
    """Time-limited TURN credentials (coturn ``use-auth-secret``) for the calling site or user."""
    if not settings.turn_urls:
        return TurnOut(iceServers=[], ttl=0, expires_at=None)
    creds = turn.make_credentials(turn.resolve_secret(settings.turn_secret_ref), caller, settings.turn_ttl_s)
    servers = turn.ice_servers(settings.turn_urls, creds)
    return TurnOut(
        iceServers=[IceServerOut(**s) for s in servers],
        ttl=creds.ttl_s,
        expires_at=to_local(creds.expires_at),
    )
