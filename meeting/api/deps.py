"""Request dependencies: DB session, who is calling (cookie session, API token or site token), role checks.

Every route declares exactly one access policy from here (``public``, ``require(...)`` aliases or
``SiteAgent``); the role-matrix test walks all routes and proves each one.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy.orm import Session

from meeting.errors import AuthError, Forbidden
from meeting.i18n import normalize_lang
from meeting.models import Site, User, UserRole
from meeting.services import auth
from meeting.settings import Settings

logger = logging.getLogger(__name__)

SESSION_COOKIE = "lt_session"
LANG_COOKIE = "lang"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ALL_ROLES = tuple(UserRole)


def get_db(request: Request) -> Iterator[Session]:
    factory = request.app.state.sessions
    with factory() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_db)]
IdPath = Annotated[int, Path(ge=1, le=2_147_483_647)]  # fits every DB's INTEGER
SitePath = Annotated[str, Path(min_length=1, max_length=8)]


def get_settings(request: Request) -> Settings:
    s: Settings = request.app.state.settings
    return s


SettingsDep = Annotated[Settings, Depends(get_settings)]


def request_lang(request: Request) -> str:
    q = request.query_params.get("lang")
    if q:
        return normalize_lang(q)
    # Vietnamese first, whatever Accept-Language says: English only when chosen (switch or ?lang).
    return normalize_lang(request.cookies.get(LANG_COOKIE))


LangDep = Annotated[str, Depends(request_lang)]


@dataclass
class Principal:
    user: User
    via: str  # "session" | "token"
    csrf_token: str | None = None


def _bearer(request: Request) -> str | None:
    h = request.headers.get("authorization", "")
    scheme, _, value = h.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


async def get_principal(request: Request, db: SessionDep) -> Principal | None:
    """The calling user, or None. Cookie sessions must prove CSRF on every unsafe method."""
    token = _bearer(request)
    if token is not None:
        user = auth.api_token_user(db, token) if token.startswith(auth.API_TOKEN_PREFIX) else None
        if user is None:
            raise AuthError("Mã truy cập không hợp lệ hoặc đã bị thu hồi")
        return Principal(user, "token")
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    found = auth.session_user(db, cookie)
    if found is None:
        return None
    user, sess = found
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER)
        if sent is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            form = await request.form()
            value = form.get("csrf_token")
            sent = value if isinstance(value, str) else None
        if sent != sess.csrf_token:
            logger.warning("CSRF check failed for %s %s", request.method, request.url.path)
            raise Forbidden("Phiên làm việc không hợp lệ (CSRF), hãy tải lại trang")
    return Principal(user, "session", sess.csrf_token)


PrincipalDep = Annotated[Principal | None, Depends(get_principal)]


def require(*roles: UserRole) -> Callable[..., Awaitable[User]]:
    """A dependency that lets only ``roles`` through: 401 when anonymous, 403 for other roles."""

    async def dep(principal: PrincipalDep) -> User:
        if principal is None:
            raise AuthError("Bạn cần đăng nhập")
        if UserRole(principal.user.role) not in roles:
            raise Forbidden("Bạn không có quyền thực hiện thao tác này")
        return principal.user

    dep.__name__ = "require_" + "_".join(r.value for r in roles)
    dep.policy = tuple(r.value for r in roles)  # type: ignore[attr-defined]
    return dep


async def public() -> None:
    """Explicitly open to everyone (login page, health, static files, API docs)."""


public.policy = ("public",)  # type: ignore[attr-defined]

AnyUser = Annotated[User, Depends(require(*ALL_ROLES))]
Scheduler = Annotated[User, Depends(require(UserRole.ADMIN, UserRole.SECRETARIAT))]
Admin = Annotated[User, Depends(require(UserRole.ADMIN))]
Public = Depends(public)


def site_agent(request: Request, db: SessionDep) -> Site:
    """The site whose room agent is calling, from its long-lived site token (DESIGN §9).

    A plain function on purpose: FastAPI runs it in the worker pool. The lookup writes ``last_used_at``, and on
    the event loop a busy SQLite would stall every WebSocket and the SFU's media with it (129 agents polling at a
    meeting's start)."""
    token = _bearer(request)
    site = auth.site_for_token(db, token) if token and token.startswith(auth.SITE_TOKEN_PREFIX) else None
    if site is None:
        raise AuthError("Mã điểm cầu không hợp lệ hoặc đã bị thu hồi")
    db.commit()  # last_used_at
    return site


site_agent.policy = ("site",)  # type: ignore[attr-defined]
SiteAgent = Annotated[Site, Depends(site_agent)]
