"""`meeting` command line: serve, db upgrade, sites sync/list/token, users, reminders."""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from conftool.cli.common import emit_json, setup_logging, site_result_doc
from conftool.errors import ConftoolError
from meeting import migrate
from meeting.agent.control import cli as agent_control_app
from meeting.db import make_engine, make_sessionmaker, redact_url, session_scope
from meeting.errors import MeetingError
from meeting.i18n import bilingual
from meeting.settings import Settings

P = ParamSpec("P")
R = TypeVar("R")
logger = logging.getLogger("meeting")
console = Console()
err_console = Console(stderr=True)

app = typer.Typer(
    name="meeting",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    help="Liên Thông — lịch họp trực tuyến / online meeting service.",
)
sites_app = typer.Typer(no_args_is_help=True, help="Điểm cầu (từ inventory) / sites from the inventory")
users_app = typer.Typer(no_args_is_help=True, help="Người dùng và vai trò / users and roles")
db_app = typer.Typer(no_args_is_help=True, help="Cơ sở dữ liệu / database")
reminders_app = typer.Typer(no_args_is_help=True, help="Nhắc lịch / reminders")
app.add_typer(sites_app, name="sites")
app.add_typer(users_app, name="users")
app.add_typer(db_app, name="db")
app.add_typer(reminders_app, name="reminders")

DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db", help="SQLAlchemy URL (env LIENTHONG_DB; default SQLite in the state dir)", show_default=False
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output")]


def _fail(message: str, code: int, json_out: bool) -> typer.Exit:
    if json_out:
        emit_json({"error": message})
    err_console.print(f"[bold red]Lỗi / Error:[/] {message}", markup=True, highlight=False, soft_wrap=True)
    return typer.Exit(code)


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Expected failures → a clear VI/EN message and exit code (2 bad input, 1 conflict); no traceback."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        json_out = bool(kwargs.get("json_out"))
        try:
            return fn(*args, **kwargs)
        except MeetingError as exc:
            raise _fail(bilingual(exc.message, **exc.params), exc.exit_code, json_out) from None
        except ConftoolError as exc:
            raise _fail(str(exc), exc.exit_code, json_out) from None
        except OperationalError as exc:
            raise _fail(
                f"không kết nối được cơ sở dữ liệu / cannot use the database: {type(exc.orig).__name__}",
                2,
                json_out,
            ) from None

    return wrapper


@contextmanager
def _session(db: str | None) -> Iterator[tuple[Session, Settings]]:
    settings = Settings.load(db)
    migrate.upgrade(settings.db_url)
    engine = make_engine(settings.db_url)
    try:
        with session_scope(make_sessionmaker(engine)) as session:
            yield session, settings
    finally:
        engine.dispose()


@app.callback()
def _root(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging")] = False) -> None:
    setup_logging(verbose)


# ----- serve ---------------------------------------------------------------------------------------
@app.command()
@handle_errors
def serve(
    host: Annotated[str, typer.Option(help="Listen address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    db: DbOpt = None,
    reminders: Annotated[bool, typer.Option(help="Send reminders from this process")] = True,
    json_out: JsonOpt = False,
) -> None:
    """Chạy dịch vụ lịch họp / run the meeting service (migrates the DB first)."""
    import uvicorn

    from meeting.api.app import create_app
    from meeting.api.middleware import JsonFormatter

    settings = Settings.load(db)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    migrate.upgrade(settings.db_url)
    if json_out:
        emit_json({"listening": f"http://{host}:{port}", "db": redact_url(settings.db_url)})
    app_ = create_app(settings, run_migrations=False, reminders=reminders)
    uvicorn.run(
        app_,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        server_header=False,
    )


# ----- agent ---------------------------------------------------------------------------------------
@app.command()
@handle_errors
def agent(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML file (keys: site, server, "
                                                "token_file, source, sink); flags override it")] = None,
    site: Annotated[str | None, typer.Option(help="This room PC's site id")] = None,
    server: Annotated[str | None, typer.Option(help="Meeting service URL, e.g. http://10.11.0.20:8000")] = None,
    token_file: Annotated[Path | None, typer.Option("--token-file", help="Site token file (mode 0600)")] = None,
    source: Annotated[str | None, typer.Option(help="testsrc | FILE | v4l2:/dev/video0")] = None,
    sink: Annotated[str | None, typer.Option(help="null | FILE | alsa")] = None,
    once: Annotated[bool, typer.Option("--once", help="Attend one meeting, then exit 0")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Máy phòng họp tự tham gia cuộc họp / the room agent: joins its site's meetings by itself, stays joined.

    Exit codes: 0 done (--once) or stopped; 2 bad config or token file; 3 token revoked or site unknown.
    """
    import asyncio
    import signal

    from meeting.agent import config as agent_config
    from meeting.agent.runner import Agent

    cfg = agent_config.load(config, site=site, server=server, token_file=token_file, source=source, sink=sink,
                            once=once or None)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(min(root.level, logging.INFO) if root.level else logging.INFO)
    for noisy in ("aioice", "aiortc", "websockets", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    def event(name: str, data: dict[str, Any]) -> None:
        if json_out:
            sys.stdout.write(json.dumps({"event": name, **data}, ensure_ascii=False) + "\n")
            sys.stdout.flush()

    async def main() -> int:
        task = asyncio.ensure_future(Agent(cfg, on_event=event).run())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        try:
            return await task
        except asyncio.CancelledError:
            logger.info("agent stopped by signal")
            return 0

    logger.info("agent for site %s starting, server %s", cfg.site, cfg.server)
    code = asyncio.run(main())
    if code:
        raise typer.Exit(code)


# ----- db ------------------------------------------------------------------------------------------
@db_app.command("upgrade")
@handle_errors
def db_upgrade(db: DbOpt = None, json_out: JsonOpt = False) -> None:
    """Áp dụng migration / apply migrations (version table meeting_alembic_version)."""
    settings = Settings.load(db)
    rev = migrate.upgrade(settings.db_url)
    if json_out:
        emit_json({"revision": rev, "head": migrate.head(), "db": redact_url(settings.db_url)})
    else:
        console.print(f"database at revision {rev}")


# ----- sites ---------------------------------------------------------------------------------------
@sites_app.command("sync")
@handle_errors
def sites_sync(
    inventory: Annotated[Path | None, typer.Option("--inventory", "-i", help="Inventory directory")] = None,
    db: DbOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Nhập điểm cầu từ inventory / import sites (idempotent; removed sites are archived)."""
    from conftool.cli.common import load_inventory
    from meeting.services import sites

    inv = load_inventory(inventory)
    with _session(db) as (session, _):
        result = sites.sync(session, inv)
    if json_out:
        items = [
            {"site": sid, "device": None, "kind": "site", "status": status, "detail": None}
            for status in ("added", "updated", "restored", "archived", "unchanged")
            for sid in getattr(result, status)
        ]
        emit_json(site_result_doc(result.summary, items))
    else:
        console.print(", ".join(f"{k}: {v}" for k, v in result.summary.items()))


@sites_app.command("list")
@handle_errors
def sites_list(db: DbOpt = None, json_out: JsonOpt = False) -> None:
    """Liệt kê điểm cầu / list sites."""
    from sqlalchemy import select

    from meeting.models import Site

    with _session(db) as (session, _):
        rows = list(session.scalars(select(Site).order_by(Site.id)))
        docs: list[dict[str, Any]] = [
            {
                "site": s.id,
                "name": s.full_name,
                "level": s.level,
                "parent": s.parent_id,
                "archived": s.archived_at is not None,
            }
            for s in rows
        ]
    if json_out:
        emit_json(docs)
        return
    t = Table("id", "tên / name", "level", "parent", "archived")
    for d in docs:
        t.add_row(d["site"], d["name"], d["level"], d["parent"] or "", "yes" if d["archived"] else "")
    console.print(t)


@sites_app.command("token")
@handle_errors
def sites_token(
    site: Annotated[str, typer.Argument(help="Site id")],
    revoke: Annotated[bool, typer.Option("--revoke", help="Revoke every token of the site")] = False,
    db: DbOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Cấp (hoặc thu hồi) mã điểm cầu cho máy phòng họp / issue or revoke a site token (shown once)."""
    from meeting.services import auth

    with _session(db) as (session, _):
        if revoke:
            n = auth.revoke_site_tokens(session, site)
            doc: dict[str, Any] = {"site": site, "revoked": n}
        else:
            doc = {"site": site, "token": auth.issue_site_token(session, site)}
    if json_out:
        emit_json(doc)
    elif revoke:
        console.print(f"revoked {doc['revoked']} token(s) of site {site}")
    else:
        sys.stdout.write(doc["token"] + "\n")


# ----- users ---------------------------------------------------------------------------------------
def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(typer.prompt("Mật khẩu / password", hide_input=True, confirmation_prompt=True))


@users_app.command("add")
@handle_errors
def users_add(
    username: str,
    role: Annotated[str, typer.Option(help="admin | secretariat | engineer | operator")],
    site: Annotated[str | None, typer.Option(help="Site id (operators only)")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin")
    ] = False,
    db: DbOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Thêm người dùng / add a user."""
    from meeting.services import auth

    pw = _password(password_stdin)
    with _session(db) as (session, _):
        u = auth.create_user(session, username, pw, role, site)
        doc = {"username": u.username, "role": u.role, "site": u.site_id}
    if json_out:
        emit_json(doc)
    else:
        console.print(f"user {doc['username']} ({doc['role']}) added")


@users_app.command("passwd")
@handle_errors
def users_passwd(
    username: str,
    password_stdin: Annotated[bool, typer.Option("--password-stdin")] = False,
    db: DbOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Đổi mật khẩu / change a password (ends the user's sessions)."""
    from meeting.services import auth

    pw = _password(password_stdin)
    with _session(db) as (session, _):
        auth.set_password(session, username, pw)
    if json_out:
        emit_json({"username": username, "changed": True})
    else:
        console.print(f"password of {username} changed")


@users_app.command("list")
@handle_errors
def users_list(db: DbOpt = None, json_out: JsonOpt = False) -> None:
    """Liệt kê người dùng / list users."""
    from meeting.services import auth

    with _session(db) as (session, _):
        docs: list[dict[str, Any]] = [
            {"username": u.username, "role": u.role, "site": u.site_id, "active": u.active}
            for u in auth.list_users(session)
        ]
    if json_out:
        emit_json(docs)
        return
    t = Table("username", "role", "site", "active")
    for d in docs:
        t.add_row(d["username"], d["role"], d["site"] or "", "yes" if d["active"] else "no")
    console.print(t)


@users_app.command("token")
@handle_errors
def users_token(
    username: str,
    name: Annotated[str, typer.Option(help="What the token is for")] = "cli",
    revoke: Annotated[bool, typer.Option("--revoke", help="Revoke all the user's API tokens")] = False,
    db: DbOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """API token (Bearer) cho máy / an API token for a machine acting as this user (shown once)."""
    from meeting.services import auth

    with _session(db) as (session, _):
        doc: dict[str, Any] = (
            {"username": username, "revoked": auth.revoke_api_tokens(session, username)}
            if revoke
            else {"username": username, "token": auth.issue_api_token(session, username, name)}
        )
    if json_out:
        emit_json(doc)
    elif revoke:
        console.print(f"revoked {doc['revoked']} token(s)")
    else:
        sys.stdout.write(doc["token"] + "\n")


# ----- reminders -----------------------------------------------------------------------------------
@reminders_app.command("run")
@handle_errors
def reminders_run(db: DbOpt = None, json_out: JsonOpt = False) -> None:
    """Gửi các nhắc lịch đến hạn / send due reminders once and extend open-ended series (for cron)."""
    from meeting.services import meetings, reminders

    with _session(db) as (session, settings):
        meetings.extend_series(session, settings)
        results = reminders.run_once(session, settings)
    docs = [r.__dict__ for r in results]
    if json_out:
        emit_json(
            {
                "summary": {"sent": sum(r.ok for r in results), "failed": sum(not r.ok for r in results)},
                "items": docs,
            }
        )
    else:
        console.print(json.dumps(docs, ensure_ascii=False))
    if any(not r.ok for r in results):
        raise typer.Exit(1)


# ----- recordings (issue 11) -----------------------------------------------------------------------
recordings_app = typer.Typer(no_args_is_help=True, help="Bản ghi hình cuộc họp / meeting recordings")
app.add_typer(recordings_app, name="recordings")


@recordings_app.command("purge")
@handle_errors
def recordings_purge(
    days: Annotated[
        int | None, typer.Option(help="Keep this many days (default: LIENTHONG_RECORDING_RETENTION_DAYS or 90)")
    ] = None,
    db: DbOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Xóa bản ghi hình quá hạn lưu trữ / delete recording files past the retention period (for cron)."""
    from dataclasses import asdict, replace

    from meeting.errors import InvalidInput
    from meeting.services import recordings

    if days is not None and days < 0:
        raise InvalidInput("Số ngày lưu trữ bản ghi hình không được âm", field="days")
    with _session(db) as (session, settings):
        if days is not None:
            settings = replace(settings, recording_retention_days=days)
        purged = recordings.purge(session, settings)
        kept_days = settings.recording_retention_days
    items = [asdict(p) for p in purged]
    summary = {"purged": len(purged), "bytes": sum(p.size_bytes for p in purged), "retention_days": kept_days}
    if json_out:
        emit_json({"summary": summary, "items": items})
    else:
        console.print(f"{len(purged)} recording(s) purged, {summary['bytes']} bytes freed "
                      f"(retention {kept_days} days)")


# ----- TURN (issue 11) ------------------------------------------------------------------------------
turn_app = typer.Typer(no_args_is_help=True, help="TURN (coturn) cho điểm cầu sau NAT / TURN for rooms behind NAT")
app.add_typer(turn_app, name="turn")

# The commune operator's local commands for the running room agent (raise hand): `meeting agent-control hand`.
app.add_typer(agent_control_app, name="agent-control")


@turn_app.command("credentials")
@handle_errors
def turn_credentials(
    identity: Annotated[str, typer.Option(help="Who the credentials are for, e.g. site:03160")],
    json_out: JsonOpt = False,
) -> None:
    """In thông tin TURN có thời hạn / print time-limited TURN credentials (LIENTHONG_TURN_URLS, …_SECRET_REF)."""
    from meeting.media import turn

    settings = Settings.load()
    if not settings.turn_urls:
        raise turn.TurnError(turn.NO_URLS_MSG)
    creds = turn.make_credentials(turn.resolve_secret(settings.turn_secret_ref), identity, settings.turn_ttl_s)
    doc = {"iceServers": turn.ice_servers(settings.turn_urls, creds), "ttl": creds.ttl_s,
           "expires_at": creds.expires_at.isoformat()}
    if json_out:
        emit_json(doc)
    else:
        console.print(json.dumps(doc, ensure_ascii=False, indent=2))


@turn_app.command("config")
@handle_errors
def turn_config(
    listen_ip: Annotated[str, typer.Option(help="Address coturn listens on (reachable by the rooms)")],
    relay_ip: Annotated[str, typer.Option(help="Address coturn relays from (reaches the SFU)")],
    out: Annotated[Path, typer.Option(help="Directory for turnserver.conf (mode 0600), its db, pid and log")],
    port: Annotated[int, typer.Option(help="UDP/TCP port")] = 3478,
    json_out: JsonOpt = False,
) -> None:
    """Viết cấu hình coturn / write a coturn config with the shared secret of LIENTHONG_TURN_SECRET_REF."""
    from meeting.media import turn

    settings = Settings.load()
    secret = turn.resolve_secret(settings.turn_secret_ref)
    server = turn.Coturn(turn.CoturnConfig(listen_ip=listen_ip, relay_ip=relay_ip, secret=secret, port=port), out)
    path = server.write_config()
    doc = {"config": str(path), "command": " ".join(server.command())}
    if json_out:
        emit_json(doc)
    else:
        console.print(f"wrote {path}; run: {doc['command']}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
