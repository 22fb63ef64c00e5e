"""TURN for rooms behind NAT: time-limited coturn credentials (the "REST API" scheme) and a coturn we can start.

coturn's ``use-auth-secret`` mode shares one secret between coturn and the meeting server; the server hands each
client a username ``<expiry unix time>:<identity>`` and the password ``base64(HMAC-SHA1(secret, username))``.
coturn recomputes the password and refuses it after the expiry, so nothing is stored per user and a leaked
credential dies by itself. The secret itself lives behind a credential reference (``env:`` / ``vault:``) and is
never logged.

:class:`Coturn` writes a config file (mode 0600) and runs Debian's ``turnserver`` in the foreground, optionally
inside a network namespace, for the tests and the lab; a production host runs coturn as a system service with
the same settings (see docs/media.md).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiortc import RTCIceServer
from aiortc.rtcicetransport import parse_stun_turn_uri

from meeting.errors import InvalidInput, MeetingError

logger = logging.getLogger(__name__)

DEFAULT_REALM = "lienthong"
DEFAULT_PORT = 3478

# TurnError messages (Vietnamese msgids; English in meeting.i18n.MEDIA_EN)
NO_SECRET_MSG = "Chưa có khóa bí mật TURN"
NO_URLS_MSG = "Chưa cấu hình địa chỉ TURN (LIENTHONG_TURN_URLS)"
NO_REF_MSG = "Đã cấu hình địa chỉ TURN nhưng thiếu tham chiếu khóa bí mật (LIENTHONG_TURN_SECRET_REF)"
SECRET_UNREADABLE_MSG = "Không đọc được khóa bí mật TURN: {error}"
SECRET_KIND_MSG = "Khóa bí mật TURN phải là env: hoặc vault:, không phải keyfile:"
NO_BINARY_MSG = "Không tìm thấy turnserver (cài gói Debian coturn)"
DIED_MSG = "turnserver dừng ngay khi khởi động: {error}"
NOT_LISTENING_MSG = "turnserver không mở cổng {port} sau {seconds} giây"


class TurnError(MeetingError):
    """TURN is configured wrongly (URL, secret reference) or coturn would not start."""

    http_status = 503


@dataclass(frozen=True)
class TurnCredentials:
    username: str
    credential: str
    ttl_s: int
    expires_at: datetime

    def __repr__(self) -> str:  # the credential is a password: never in logs or tracebacks
        return f"TurnCredentials(username={self.username!r}, ttl_s={self.ttl_s})"


def make_credentials(secret: str, identity: str, ttl_s: int, now: float | None = None) -> TurnCredentials:
    """coturn REST-API credentials for ``identity`` (a site id or a user), valid ``ttl_s`` seconds from ``now``."""
    if not secret:
        raise TurnError(NO_SECRET_MSG)
    if ttl_s <= 0:
        raise InvalidInput("Thời hạn thông tin TURN phải lớn hơn 0 giây", field="turn_ttl_s")
    if not identity or any(c.isspace() for c in identity):
        raise InvalidInput("Tên dùng cho TURN không hợp lệ", field="identity")
    expiry = int(now if now is not None else time.time()) + ttl_s
    username = f"{expiry}:{identity}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return TurnCredentials(
        username=username,
        credential=base64.b64encode(digest).decode(),
        ttl_s=ttl_s,
        expires_at=datetime.fromtimestamp(expiry, UTC),
    )


def check_urls(urls: Sequence[str]) -> list[str]:
    """Accept only ``turn:``/``turns:`` URIs (RFC 7065) that aiortc and browsers parse; the error names the bad one."""
    out: list[str] = []
    for url in urls:
        try:
            parsed = parse_stun_turn_uri(url)
        except ValueError:
            parsed = {}
        ok_transport = {"turn": ("udp", "tcp"), "turns": ("tcp",)}.get(str(parsed.get("scheme")), ())
        if not parsed.get("host") or parsed.get("transport") not in ok_transport:
            raise InvalidInput("Địa chỉ TURN không hợp lệ: {url} (dạng turn:HOST:PORT?transport=udp)",
                               field="turn_urls", url=url)
        out.append(url)
    return out


def ice_servers(urls: Sequence[str], creds: TurnCredentials) -> list[dict[str, Any]]:
    """The ``RTCIceServer`` dictionaries a browser's ``RTCPeerConnection`` (or an agent) is configured with."""
    if not urls:
        return []
    return [{"urls": check_urls(urls), "username": creds.username, "credential": creds.credential,
             "credentialType": "password"}]


def rtc_ice_servers(docs: Sequence[dict[str, Any]]) -> list[RTCIceServer]:
    """The same dictionaries as aiortc objects (the room agent builds its ``RTCConfiguration`` from them)."""
    return [RTCIceServer(urls=d["urls"], username=d.get("username"), credential=d.get("credential")) for d in docs]


# -- coturn ---------------------------------------------------------------------------------------------------
@dataclass
class CoturnConfig:
    """What our coturn listens on and relays from; every address must be one of ours (a namespace or the LAN)."""

    listen_ip: str
    relay_ip: str
    secret: str
    port: int = DEFAULT_PORT
    realm: str = DEFAULT_REALM
    min_port: int = 49160
    max_port: int = 49200
    allowed_peers: tuple[str, ...] = ()
    """Peer ranges the relay may reach (``10.11.0.0-10.11.255.255``); empty = coturn's default."""

    def __post_init__(self) -> None:
        for name in ("listen_ip", "relay_ip"):
            try:
                ipaddress.ip_address(getattr(self, name))
            except ValueError:
                raise InvalidInput("Địa chỉ IP không hợp lệ cho {name}", field=name, name=name) from None
        if not 0 < self.port < 65536 or not 0 < self.min_port <= self.max_port < 65536:
            raise InvalidInput("Cổng TURN không hợp lệ", field="port")

    def render(self, workdir: Path) -> str:
        lines = [
            "# written by meeting.media.turn: time-limited REST-API credentials only",
            f"listening-ip={self.listen_ip}",
            f"listening-port={self.port}",
            f"relay-ip={self.relay_ip}",
            f"min-port={self.min_port}",
            f"max-port={self.max_port}",
            f"realm={self.realm}",
            "use-auth-secret",
            f"static-auth-secret={self.secret}",
            "fingerprint",
            "no-tls",
            "no-dtls",
            "no-cli",
            "no-multicast-peers",
            "no-software-attribute",
            f"userdb={workdir / 'turndb'}",
            f"pidfile={workdir / 'turnserver.pid'}",
            f"log-file={workdir / 'turnserver.log'}",
            "simple-log",
        ]
        lines += [f"allowed-peer-ip={r}" for r in self.allowed_peers]
        return "\n".join(lines) + "\n"


class Coturn:
    """Debian's ``turnserver`` in the foreground with our config; ``start()``/``stop()``, stop is idempotent."""

    def __init__(self, config: CoturnConfig, workdir: Path, *, netns: str | None = None) -> None:
        self.config = config
        self.workdir = workdir
        self.netns = netns
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def conf_path(self) -> Path:
        return self.workdir / "turnserver.conf"

    @property
    def log_path(self) -> Path:
        return self.workdir / "turnserver.log"

    def write_config(self) -> Path:
        """Write the config readable by its owner only: it holds the shared secret."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.conf_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(self.config.render(self.workdir))
        return self.conf_path

    def command(self) -> list[str]:
        binary = shutil.which("turnserver") or "/usr/bin/turnserver"
        cmd = [binary, "-c", str(self.conf_path), "--no-stdout-log"]
        return (["ip", "netns", "exec", self.netns] if self.netns else []) + cmd

    def start(self, timeout_s: float = 10.0) -> None:
        if self.proc is not None:
            return
        if shutil.which("turnserver") is None:
            raise TurnError(NO_BINARY_MSG)
        self.write_config()
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = (self.proc.stderr.read() if self.proc.stderr else b"").decode(errors="replace")
                self.proc = None
                raise TurnError(DIED_MSG, error=err[-500:] or "?")
            if self._listening():
                logger.info("coturn pid %d listening on %s:%d", self.proc.pid, self.config.listen_ip,
                            self.config.port)
                return
            time.sleep(0.1)
        self.stop()
        raise TurnError(NOT_LISTENING_MSG, port=self.config.port,
                        seconds=timeout_s)

    def _listening(self) -> bool:
        """Our turnserver has bound its UDP port: read from its own network namespace's socket table."""
        if self.proc is None:
            return False
        want = f"{self.config.port:04X}"
        try:
            lines = Path(f"/proc/{self.proc.pid}/net/udp").read_text().splitlines()[1:]
        except OSError:
            return False
        return any(line.split()[1].rsplit(":", 1)[1] == want for line in lines if len(line.split()) > 1)

    def stop(self) -> None:
        """Terminate our turnserver (by its PID, the one we started) and wait for it."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        logger.info("coturn pid %d stopped", proc.pid)

    def __enter__(self) -> Coturn:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def resolve_secret(ref: str | None) -> str:
    """coturn's shared secret from its credential reference (``env:VAR`` or ``vault:FILE#key``), never logged."""
    from conftool.errors import ConftoolError
    from conftool.inventory import resolve

    if not ref:
        raise TurnError(NO_REF_MSG)
    try:
        secret = resolve(ref)
    except ConftoolError as exc:
        raise TurnError(SECRET_UNREADABLE_MSG, error=str(exc)) from None
    if secret.kind != "password":
        raise TurnError(SECRET_KIND_MSG)
    return secret.reveal()
