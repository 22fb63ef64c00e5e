"""The meeting service's one settings object: where the database is and how strict the web layer is."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

DEFAULT_TZ = "Asia/Ho_Chi_Minh"


def _state_dir() -> Path:
    from conftool.inventory.secrets import default_state_dir

    return default_state_dir()


def default_db_url() -> str:
    """LIENTHONG_DB, else a SQLite file in the state dir (DESIGN §9)."""
    env = os.environ.get("LIENTHONG_DB")
    if env:
        return env
    return f"sqlite:///{_state_dir() / 'lienthong.db'}"


def _env_bool(name: str, default: bool) -> bool:
    v = os.environ.get(name)
    if v is None:
        return default
    return v.strip().lower() in {"1", "true", "yes", "on"}


def _env_int(name: str, default: int, minimum: int = 0) -> int:
    """A whole-number setting; a typo in a service file must name the variable, not end in a traceback."""
    raw = (os.environ.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        from meeting.errors import InvalidInput

        raise InvalidInput("Biến môi trường {name} phải là số nguyên ≥ {minimum} (đang là «{raw}»)", field=name,
                           name=name, minimum=minimum, raw=raw[:40])
    return value


@dataclass(frozen=True)
class Settings:
    """Everything tunable, read once (env + CLI flags) and passed down; nothing reads os.environ later."""

    db_url: str
    secure_cookies: bool = False  # set when served over https, so the session cookie gets `Secure`
    session_hours: float = 12.0
    heartbeat_online_s: float = 90.0
    join_token_ttl_s: int = 300
    horizon_days: int = 366  # how far recurring meetings are expanded for conflicts and reminders
    max_occurrences: int = 400
    max_body_bytes: int = 1024 * 1024
    login_max_failures: int = 5
    login_window_s: int = 300
    past_grace_s: int = 300  # a start this much in the past is still accepted (clock skew, slow typing)
    smtp_host: str | None = None
    smtp_port: int = 25
    mail_from: str = "lich-hop@localhost"
    webhook_url: str | None = None
    reminder_interval_s: float = 30.0
    inventory_dir: str | None = None
    recordings_dir: str | None = None  # LIENTHONG_RECORDINGS_DIR; default <state dir>/recordings
    recording_retention_days: int = 90  # LIENTHONG_RECORDING_RETENTION_DAYS; files older are purged
    turn_urls: tuple[str, ...] = ()  # LIENTHONG_TURN_URLS, comma-separated turn: URIs handed to clients
    turn_secret_ref: str | None = None  # LIENTHONG_TURN_SECRET_REF: env:/vault: reference to coturn's auth secret
    sfu_workers: int = 0
    """LIENTHONG_SFU_WORKERS: SFU worker processes that take the room agents' subscriptions (meeting.media.shards);
    0 = every site on the one SFU in the server process."""
    turn_ttl_s: int = 12 * 3600  # lifetime of the TURN credentials the server hands out

    def recordings_path(self) -> Path:
        """Where recordings are written: ``recordings_dir`` or the state dir's ``recordings/``."""
        return Path(self.recordings_dir) if self.recordings_dir else _state_dir() / "recordings"

    @classmethod
    def load(cls, db_url: str | None = None, **overrides: Any) -> Settings:
        smtp = os.environ.get("LIENTHONG_SMTP")  # host:port
        host, port = (None, 25)
        if smtp:
            h, _, p = smtp.rpartition(":")
            host, port = (h, int(p)) if h and p.isdigit() else (smtp, 25)
        s = cls(
            db_url=db_url or default_db_url(),
            secure_cookies=_env_bool("LIENTHONG_SECURE_COOKIES", False),
            smtp_host=host,
            smtp_port=port,
            mail_from=os.environ.get("LIENTHONG_MAIL_FROM", cls.mail_from),
            webhook_url=os.environ.get("LIENTHONG_REMINDER_WEBHOOK") or None,
            inventory_dir=os.environ.get("LIENTHONG_INVENTORY") or None,
            recordings_dir=os.environ.get("LIENTHONG_RECORDINGS_DIR") or None,
            recording_retention_days=_env_int("LIENTHONG_RECORDING_RETENTION_DAYS", 90, minimum=1),
            turn_urls=tuple(u.strip() for u in os.environ.get("LIENTHONG_TURN_URLS", "").split(",") if u.strip()),
            turn_secret_ref=os.environ.get("LIENTHONG_TURN_SECRET_REF") or None,
            sfu_workers=_env_int("LIENTHONG_SFU_WORKERS", 0),
        )
        return replace(s, **overrides) if overrides else s
