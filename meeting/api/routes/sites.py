"""Sites (read-only: they come from the inventory), the picker tree, site tokens, per-site iCalendar feed."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from meeting.api.deps import Admin, AnyUser, SessionDep, SitePath
from meeting.errors import Forbidden
from meeting.models import Site, UserRole
from meeting.schemas import SiteOut, SiteTokenOut
from meeting.services import auth, ical, sites

router = APIRouter(prefix="/api/v1/sites", tags=["sites"])


def _out(s: Site) -> SiteOut:
    return SiteOut(
        id=s.id,
        name=s.name,
        full_name=s.full_name,
        slug=s.slug,
        level=s.level,
        parent=s.parent_id,
        archived=s.archived_at is not None,
    )


@router.get("")
def list_sites(
    user: AnyUser,
    db: SessionDep,
    q: Annotated[str, Query(max_length=100, description="Search, with or without diacritics")] = "",
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
) -> list[SiteOut]:
    return [_out(s) for s in sites.search(db, q, limit)]


@router.get("/tree")
def site_tree(user: AnyUser, db: SessionDep) -> list[dict[str, Any]]:
    return sites.tree(db)


@router.post("/{site_id}/token", status_code=201)
def issue_token(site_id: SitePath, user: Admin, db: SessionDep) -> SiteTokenOut:
    token = auth.issue_site_token(db, site_id)
    db.commit()
    return SiteTokenOut(site=site_id, token=token)


@router.delete("/{site_id}/token")
def revoke_token(site_id: SitePath, user: Admin, db: SessionDep) -> dict[str, int]:
    sites.get_site(db, site_id, allow_archived=True)
    n = auth.revoke_site_tokens(db, site_id)
    db.commit()
    return {"revoked": n}


@router.get(
    "/{site_id}/calendar.ics", response_class=Response, responses={200: {"content": {"text/calendar": {}}}}
)
def site_calendar(site_id: SitePath, user: AnyUser, db: SessionDep) -> Response:
    if user.role == UserRole.OPERATOR.value and user.site_id != site_id:
        raise Forbidden("Bạn không có quyền xem lịch của điểm cầu này")
    site = sites.get_site(db, site_id, allow_archived=True)
    return Response(ical.site_feed(db, site), media_type="text/calendar; charset=utf-8")
