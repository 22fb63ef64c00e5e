"""Who am I, and (admin) who are the users."""

from __future__ import annotations

from fastapi import APIRouter

from meeting.api.convert import user_out
from meeting.api.deps import Admin, AnyUser, SessionDep
from meeting.schemas import UserOut
from meeting.services import auth

router = APIRouter(prefix="/api/v1", tags=["users"])


@router.get("/me")
def me(user: AnyUser) -> UserOut:
    return user_out(user)


@router.get("/users")
def users(user: Admin, db: SessionDep) -> list[UserOut]:
    return [user_out(u) for u in auth.list_users(db)]
