"""The running agent's local door: a commune operator raises the room's hand with a command on the room PC.

The agent listens on a Unix socket ``<run_dir>/agent-<site>.sock`` (``run_dir`` defaults to ``/run/lienthong``,
next to the agent's pid file); ``python -m meeting.agent.control hand --site ID [--lower]`` connects to it and the
agent sends ``{"type": "hand", "raised": …}`` on its signaling socket. One JSON line each way, nothing else is
accepted. The socket is mode 0666 on purpose: raising a hand is harmless, and whoever sits at the room PC is the
person who wants to speak (the site token stays readable by root only).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from meeting.agent.config import AgentConfigError, AgentError, default_run_dir

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
MAX_LINE = 4096


class ControlError(AgentError):
    """The local command cannot reach the agent, or the agent refused it (exit 1)."""

    exit_code = 1


def socket_path(run_dir: str | Path, site: str) -> Path:
    return Path(run_dir) / f"agent-{site}.sock"


class ControlServer:
    """The agent side: ``start()`` opens the socket (best effort), ``stop()`` closes and removes it."""

    def __init__(self, path: Path, handler: Handler) -> None:
        self.path = path
        self._handler = handler
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()  # a socket left by an agent that was killed
            self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))
            os.chmod(self.path, 0o666)
        except OSError as exc:
            logger.warning("control socket %s not available (%s): 'hand' commands will not reach this agent",
                           self.path, exc.strerror or exc)
            self._server = None
            return
        logger.info("control socket %s", self.path)

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        with contextlib.suppress(Exception):
            await self._server.wait_closed()
        self._server = None
        with contextlib.suppress(OSError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
            try:
                request = json.loads(line[:MAX_LINE])
                if not isinstance(request, dict):
                    raise ValueError("not an object")
                reply = await self._handler(request)
            except ValueError as exc:
                reply = {"ok": False, "error": f"bad request: {exc}"}
            writer.write((json.dumps(reply, ensure_ascii=False) + "\n").encode())
            await writer.drain()
        except (TimeoutError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


def request(run_dir: str | Path, site: str, payload: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
    """The command side: one request to the running agent of ``site``, its JSON answer back."""
    path = socket_path(run_dir, site)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall((json.dumps(payload) + "\n").encode())
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(MAX_LINE)
                if not chunk:
                    break
                data += chunk
    except OSError as exc:
        raise ControlError(CONTROL_UNREACHABLE_MSG, field="site", path=str(path),
                           error=exc.strerror or type(exc).__name__) from None
    try:
        answer: dict[str, Any] = json.loads(data)
    except ValueError:
        raise ControlError(CONTROL_UNREACHABLE_MSG, field="site", path=str(path), error="no answer") from None
    return answer


CONTROL_UNREACHABLE_MSG = ("Không liên lạc được với tác nhân đang chạy qua {path}: {error} "
                           "(tác nhân có đang chạy không?)")
CONTROL_REFUSED_MSG = "Tác nhân từ chối: {error}"

cli = typer.Typer(add_completion=False, help="Điều khiển tác nhân phòng họp đang chạy / control the running agent")


@cli.callback()
def _group() -> None:
    """Lệnh cục bộ cho tác nhân đang chạy / local commands for the running agent (a group: more may follow)."""


@cli.command("hand")
def hand_command(
    site: Annotated[str, typer.Option(help="This room PC's site id (as in the agent's config)")],
    lower: Annotated[bool, typer.Option("--lower", help="Lower the hand instead of raising it")] = False,
    run_dir: Annotated[str | None, typer.Option("--run-dir", help="Where the agent's control socket is "
                                                "(default /run/lienthong or $LIENTHONG_RUN_DIR)")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the answer as JSON")] = False,
) -> None:
    """Giơ tay xin phát biểu / raise (or lower) this room's hand in the meeting the agent is in.

    Exit codes: 0 done; 1 the agent is not running or not in a meeting; 2 bad input.
    """
    if not site.isdigit():
        _fail(AgentConfigError("Thiếu hoặc sai mã điểm cầu (site): {site}", field="site", site=site), json_out)
    try:
        answer = request(run_dir or default_run_dir(), site, {"cmd": "hand", "raised": not lower})
        if not answer.get("ok"):
            raise ControlError(CONTROL_REFUSED_MSG, error=str(answer.get("error")))
    except AgentError as exc:
        _fail(exc, json_out)
    if json_out:
        sys.stdout.write(json.dumps(answer, ensure_ascii=False) + "\n")
    else:
        what = "hạ tay / hand lowered" if lower else "đã giơ tay / hand raised"
        sys.stdout.write(f"{what}: site {site}, meeting {answer.get('meeting')}\n")


def _fail(exc: AgentError, json_out: bool) -> None:
    if json_out:
        sys.stdout.write(json.dumps({"ok": False, "error": exc.render("en"), "error_vi": exc.render("vi")},
                                    ensure_ascii=False) + "\n")
    else:
        sys.stderr.write(f"{exc.render('vi')} / {exc.render('en')}\n")
    raise typer.Exit(getattr(exc, "exit_code", 2))


if __name__ == "__main__":
    cli()
