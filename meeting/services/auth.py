"""Users, argon2 passwords, sessions with CSRF, login rate limit, API tokens, site tokens, join tokens.

High-entropy tokens (32 random bytes) are stored as sha256: a slow hash adds nothing for them, and
lookups stay one indexed query. Passwords, which people choose, get argon2.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from meeting.errors import AuthError, Forbidden, InvalidInput, InvalidToken, NotFound, RateLimited
from meeting.models import (
    ApiToken,
    LoginFailure,
    ServiceSecret,
    Site,
    SiteToken,
    User,
    UserRole,
    UserSession,
    utcnow,
)
from meeting.settings import Settings

logger = logging.getLogger(__name__)

_hasher = PasswordHasher()
SITE_TOKEN_PREFIX = "lts_"
API_TOKEN_PREFIX = "ltu_"
JOIN_TOKEN_PREFIX = "ljt"
MIN_PASSWORD = 10


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_token(prefix: str = "") -> str:
    return prefix + secrets.token_urlsafe(32)


# ----- users ---------------------------------------------------------------------------------------
def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput("Mật khẩu phải có ít nhất {n} ký tự", field="password", n=MIN_PASSWORD)


def create_user(
    session: Session, username: str, password: str, role: str, site_id: str | None = None
) -> User:
    username = username.strip()
    if not username or len(username) > 64:
        raise InvalidInput("Tên đăng nhập không hợp lệ", field="username")
    try:
        r = UserRole(role)
    except ValueError:
        raise InvalidInput("Vai trò không hợp lệ: {role}", field="role", role=role) from None
    if r is UserRole.OPERATOR:
        if not site_id:
            raise InvalidInput("Người vận hành điểm cầu cần một điểm cầu (--site)", field="site")
        site = session.get(Site, site_id)
        if site is None or site.archived_at is not None:
            raise InvalidInput("Không có điểm cầu {site}", field="site", site=site_id)
    elif site_id:
        raise InvalidInput("Chỉ người vận hành điểm cầu mới gắn với một điểm cầu", field="site")
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise InvalidInput("Tên đăng nhập {username} đã tồn tại", field="username", username=username)
    _check_password(password)
    user = User(username=username, password_hash=_hasher.hash(password), role=r.value, site_id=site_id)
    session.add(user)
    session.flush()
    logger.info("user %s created with role %s", username, r.value)
    return user


def get_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound("Không có người dùng {username}", field="username", username=username)
    return user


def set_password(session: Session, username: str, password: str) -> User:
    user = get_user(session, username)
    _check_password(password)
    user.password_hash = _hasher.hash(password)
    # A new password ends every open session of that user.
    session.execute(delete(UserSession).where(UserSession.user_id == user.id))
    logger.info("password changed for %s", username)
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


# ----- login, sessions, rate limit -----------------------------------------------------------------
def _check_rate(session: Session, settings: Settings, key: str) -> None:
    since = utcnow() - timedelta(seconds=settings.login_window_s)
    session.execute(delete(LoginFailure).where(LoginFailure.at < since))  # old failures no longer count
    n = (
        session.scalar(
            select(func.count())
            .select_from(LoginFailure)
            .where(LoginFailure.key == key, LoginFailure.at >= since)
        )
        or 0
    )
    if n >= settings.login_max_failures:
        logger.warning("login rate limit hit for %s", key)
        raise RateLimited(
            "Quá nhiều lần đăng nhập sai, hãy thử lại sau {minutes} phút",
            minutes=max(1, settings.login_window_s // 60),
        )


def authenticate(session: Session, settings: Settings, username: str, password: str, client_ip: str) -> User:
    """Check a password under the rate limit (failures per user+IP in a window, counted in the DB)."""
    key = f"{username.strip().lower()[:100]}|{client_ip}"
    _check_rate(session, settings, key)
    user = session.scalar(select(User).where(User.username == username.strip()))
    ok = False
    if user is not None and user.active:
        try:
            ok = _hasher.verify(user.password_hash, password)
        except (VerificationError, InvalidHashError):
            ok = False
    else:
        _hasher.hash(password)  # same cost as a real check: no user enumeration by timing
    if not ok or user is None:
        session.add(LoginFailure(key=key))
        session.commit()  # the failure must count even though the request fails
        logger.info("login failed for %s", key)
        raise AuthError("Sai tên đăng nhập hoặc mật khẩu")
    session.execute(delete(LoginFailure).where(LoginFailure.key == key))
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


@dataclass(frozen=True)
class NewSession:
    cookie: str
    csrf_token: str


def start_session(session: Session, settings: Settings, user: User) -> NewSession:
    session.execute(delete(UserSession).where(UserSession.expires_at < utcnow()))  # housekeeping
    cookie = _new_token()
    csrf = secrets.token_urlsafe(24)
    session.add(
        UserSession(
            id=_sha256(cookie),
            user_id=user.id,
            csrf_token=csrf,
            expires_at=utcnow() + timedelta(hours=settings.session_hours),
        )
    )
    session.flush()
    return NewSession(cookie, csrf)


def session_user(session: Session, cookie: str) -> tuple[User, UserSession] | None:
    row = session.get(UserSession, _sha256(cookie))
    if row is None or row.expires_at <= utcnow():
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    return user, row


def end_session(session: Session, cookie: str) -> None:
    session.execute(delete(UserSession).where(UserSession.id == _sha256(cookie)))


# ----- API tokens (machines acting as a user) -------------------------------------------------------
def issue_api_token(session: Session, username: str, name: str = "cli") -> str:
    user = get_user(session, username)
    token = _new_token(API_TOKEN_PREFIX)
    session.add(ApiToken(user_id=user.id, name=name[:100], token_hash=_sha256(token)))
    session.flush()
    logger.info("API token %r issued for %s", name, username)
    return token


def api_token_user(session: Session, token: str) -> User | None:
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _sha256(token)))
    if row is None or row.revoked_at is not None:
        return None
    user = session.get(User, row.user_id)
    return user if user is not None and user.active else None


def revoke_api_tokens(session: Session, username: str) -> int:
    user = get_user(session, username)
    rows = list(
        session.scalars(select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None)))
    )
    for r in rows:
        r.revoked_at = utcnow()
    return len(rows)


# ----- site tokens (room agents, DESIGN §9) ---------------------------------------------------------
def issue_site_token(session: Session, site_id: str) -> str:
    site = session.get(Site, site_id)
    if site is None or site.archived_at is not None:
        raise NotFound("Không có điểm cầu {site}", field="site", site=site_id)
    token = _new_token(SITE_TOKEN_PREFIX)
    session.add(SiteToken(site_id=site_id, token_hash=_sha256(token)))
    session.flush()
    logger.info("site token issued for %s", site_id)
    return token


def revoke_site_tokens(session: Session, site_id: str) -> int:
    rows = list(
        session.scalars(select(SiteToken).where(SiteToken.site_id == site_id, SiteToken.revoked_at.is_(None)))
    )
    for r in rows:
        r.revoked_at = utcnow()
    logger.info("revoked %d site token(s) of %s", len(rows), site_id)
    return len(rows)


def site_for_token(session: Session, token: str) -> Site | None:
    row = session.scalar(select(SiteToken).where(SiteToken.token_hash == _sha256(token)))
    if row is None or row.revoked_at is not None:
        return None
    site = session.get(Site, row.site_id)
    if site is None or site.archived_at is not None:
        return None
    row.last_used_at = utcnow()
    return site


# ----- join tokens (short-lived, per meeting; the media plane verifies them) -----------------------
def signing_key(session: Session) -> bytes:
    """The join-token key, created once and kept in the DB so every process signs and verifies alike."""
    row = session.get(ServiceSecret, "join_token_key")
    if row is None:
        row = ServiceSecret(name="join_token_key", value=secrets.token_hex(32))
        session.add(row)
        session.flush()
    return bytes.fromhex(row.value)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class JoinClaims:
    meeting_id: int
    site_id: str
    expires: int


def make_join_token(key: bytes, meeting_id: int, site_id: str, ttl_s: int) -> tuple[str, JoinClaims]:
    claims = JoinClaims(meeting_id, site_id, int(time.time()) + ttl_s)
    payload = _b64(
        json.dumps(
            {"m": claims.meeting_id, "s": claims.site_id, "exp": claims.expires}, separators=(",", ":")
        ).encode()
    )
    sig = _b64(hmac.new(key, f"{JOIN_TOKEN_PREFIX}.{payload}".encode(), hashlib.sha256).digest())
    return f"{JOIN_TOKEN_PREFIX}.{payload}.{sig}", claims


def verify_join_token(
    key: bytes, token: str, meeting_id: int | None = None, now: float | None = None
) -> JoinClaims:
    """Check signature, expiry and (optionally) the meeting; raises ``InvalidToken`` otherwise."""
    try:
        prefix, payload, sig = token.split(".")
        if prefix != JOIN_TOKEN_PREFIX:
            raise ValueError(prefix)
        want = hmac.new(key, f"{prefix}.{payload}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(want, _unb64(sig)):
            raise ValueError("signature")
        data = json.loads(_unb64(payload))
        claims = JoinClaims(int(data["m"]), str(data["s"]), int(data["exp"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidToken("Mã tham gia không hợp lệ") from exc
    if claims.expires < (now if now is not None else time.time()):
        raise InvalidToken("Mã tham gia đã hết hạn")
    if meeting_id is not None and claims.meeting_id != meeting_id:
        raise InvalidToken("Mã tham gia không dành cho cuộc họp này")
    return claims


def require_role(user: User, *roles: UserRole) -> None:
    if UserRole(user.role) not in roles:
        raise Forbidden("Bạn không có quyền thực hiện thao tác này")
