"""The agent's settings from a YAML file and flags (flags win), checked before anything connects.

The contract with the ``meeting-endpoint`` playbook: ``/etc/lienthong/agent.yml`` with the keys ``site``,
``server``, ``token_file``, ``source``, ``sink`` (plus optional tunables below); the token file holds the
site token and must not be readable by group or others (mode 0600 or stricter).
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from meeting.errors import MeetingError

logger = logging.getLogger(__name__)

RUN_DIR_ENV = "LIENTHONG_RUN_DIR"


def default_run_dir() -> str:
    """``/run/lienthong`` on a room PC; ``LIENTHONG_RUN_DIR`` moves it (tests and several agents on one machine
    must not create sockets in the machine's own /run)."""
    return os.environ.get(RUN_DIR_ENV) or "/run/lienthong"

EXIT_BAD_CONFIG = 2
EXIT_REVOKED = 3


class AgentError(MeetingError):
    """Root of the agent's own errors; ``exit_code`` is what ``meeting agent`` exits with."""


class AgentConfigError(AgentError, ValueError):
    """The config file, a flag or the token file is wrong: exit 2 with the file/field and what to do."""

    exit_code = EXIT_BAD_CONFIG


class TokenRejected(AgentError):
    """The server does not accept the site token (revoked, or the site is unknown/archived): exit 3."""

    exit_code = EXIT_REVOKED

    def __init__(self, site: str) -> None:
        super().__init__(REVOKED_MSG, field="token_file", site=site)


REVOKED_MSG = ("Máy chủ từ chối mã điểm cầu của {site} (đã thu hồi hoặc điểm cầu không tồn tại): "
               "xin cấp mã mới bằng 'meeting sites token {site}'")


@dataclass(frozen=True)
class AgentConfig:
    """Everything the agent needs; ``token`` is read from ``token_file`` and never logged."""

    site: str
    server: str
    token_file: Path
    source: str = "testsrc"
    sink: str = "null"
    heartbeat_s: float = 30.0
    poll_s: float = 30.0
    backoff_base_s: float = 0.25
    # A room must be back ≤ 5 s after its link returns: a 2 s cap plus a TCP retransmit and ICE + DTLS on a busy
    # PC measured 5.0 s once; 1 s keeps the margin and is still only ~1 attempt/s per room while a link is down.
    backoff_cap_s: float = 1.0
    ping_s: float = 2.0
    once: bool = False
    run_dir: str = field(default_factory=lambda: default_run_dir())
    """Where the control socket for local commands goes (``agent-<site>.sock``, see meeting.agent.control)."""
    token: str = ""

    def __repr__(self) -> str:  # the token must never reach a log line or a traceback
        return f"AgentConfig(site={self.site!r}, server={self.server!r}, source={self.source!r}, sink={self.sink!r})"


KEYS = {f.name for f in fields(AgentConfig)} - {"token"}
SOURCES = ("testsrc", "testsrc-audio")
"""Built-in sources: a moving picture + tone, or the tone only (a room whose camera is missing, for rehearsals)."""
SINKS = ("null", "alsa")


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AgentConfigError("Không đọc được tệp cấu hình {path}: {error}", field="config", path=str(path),
                               error=exc.strerror or str(exc)) from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise AgentConfigError("Tệp cấu hình {path} không phải YAML hợp lệ: {error}", field="config",
                               path=str(path), error=str(exc).splitlines()[0]) from None
    if not isinstance(data, dict):
        raise AgentConfigError("Tệp cấu hình {path} phải là một bảng khóa: giá trị", field="config", path=str(path))
    unknown = sorted(set(map(str, data)) - KEYS)
    if unknown:
        raise AgentConfigError("Tệp cấu hình {path}: khóa không hỗ trợ {keys} (dùng: {known})", field="config",
                               path=str(path), keys=", ".join(unknown), known=", ".join(sorted(KEYS)))
    if "site" in data and not isinstance(data["site"], str):
        # YAML reads 03160 as a number (even octal): the leading zero of a GSO code would be lost silently.
        raise AgentConfigError("Tệp cấu hình {path}: mã điểm cầu phải đặt trong dấu nháy, ví dụ site: '03160'",
                               field="site", path=str(path))
    return {str(k): v for k, v in data.items() if v is not None}  # `sink: null` (YAML null) = the default


def read_token(path: Path) -> str:
    """The site token; refuses a file that group or others can read (a room PC is shared by many people)."""
    try:
        st = path.stat()
    except OSError as exc:
        raise AgentConfigError("Không đọc được tệp mã điểm cầu {path}: {error}", field="token_file", path=str(path),
                               error=exc.strerror or str(exc)) from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise AgentConfigError("Tệp mã điểm cầu {path} có quyền {mode}: người khác đọc được, hãy chạy chmod 600 {path}",
                               field="token_file", path=str(path), mode=oct(st.st_mode & 0o777))
    token = path.read_text(encoding="utf-8").strip()
    if not token.startswith("lts_"):
        raise AgentConfigError("Tệp {path} không chứa mã điểm cầu (bắt đầu bằng lts_): cấp lại bằng "
                               "'meeting sites token SITE'", field="token_file", path=str(path))
    return token


def _check(cfg: AgentConfig) -> None:
    if not cfg.site or not str(cfg.site).isdigit():
        raise AgentConfigError("Thiếu hoặc sai mã điểm cầu (site): {site}", field="site", site=str(cfg.site))
    url = urlsplit(cfg.server)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise AgentConfigError("Địa chỉ máy chủ (server) phải là http(s)://máy:cổng, nhận được {server}",
                               field="server", server=cfg.server)
    source = cfg.source
    if not (source in SOURCES or source.startswith("v4l2:") or Path(source).is_file()):
        raise AgentConfigError("Nguồn (source) không hợp lệ: {source} (testsrc, một tệp, hoặc v4l2:/dev/videoN)",
                               field="source", source=source)
    if not (cfg.sink in SINKS or cfg.sink.startswith("/") or cfg.sink.startswith(".")):
        raise AgentConfigError("Đầu ra (sink) không hợp lệ: {sink} (null, alsa hoặc đường dẫn tệp)", field="sink",
                               sink=cfg.sink)
    for name in ("heartbeat_s", "poll_s", "backoff_base_s", "backoff_cap_s", "ping_s"):
        value = getattr(cfg, name)
        if not isinstance(value, int | float) or value <= 0:
            raise AgentConfigError("{name} phải là số dương, nhận được {value}", field=name, name=name,
                                   value=str(value))


def load(config_file: Path | None, **flags: Any) -> AgentConfig:
    """YAML (when given) overlaid by the flags that are not None; then validated and the token read."""
    data: dict[str, Any] = _read_yaml(config_file) if config_file is not None else {}
    data.update({k: v for k, v in flags.items() if v is not None})
    missing = [k for k in ("site", "server", "token_file") if not data.get(k)]
    if missing:
        raise AgentConfigError("Thiếu {keys}: đặt trong tệp cấu hình (--config) hoặc bằng cờ --{first}",
                               field=missing[0], keys=", ".join(missing), first=missing[0].replace("_", "-"))
    data["site"] = str(data["site"])
    data["server"] = str(data["server"]).rstrip("/")
    data["token_file"] = Path(os.path.expanduser(str(data["token_file"])))
    try:
        cfg = AgentConfig(**data)
    except TypeError as exc:
        raise AgentConfigError("Cấu hình không hợp lệ: {error}", field="config", error=str(exc)) from None
    _check(cfg)
    return replace(cfg, token=read_token(cfg.token_file))
