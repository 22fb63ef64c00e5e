"""Run the real meeting service and real room agents in network namespaces, and watch what the agents report.

Used by tests/agent (namespaces of our own, and the lab's host namespaces) and tests/media/test_ws_media.py. The
agents print one JSON event per line (``meeting agent --json``); :class:`AgentProc` collects them with the time
they arrived, so a test can ask "did site X connect, and when".
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from conftool.inventory import load
from meeting import migrate
from meeting.db import make_engine, make_sessionmaker, session_scope
from meeting.schemas import MeetingIn
from meeting.services import auth, meetings, sites
from meeting.services.recurrence import TZ
from meeting.settings import Settings

REPO = Path(__file__).resolve().parents[2]
MEETING = [str(REPO / ".venv" / "bin" / "meeting")] if (REPO / ".venv" / "bin" / "meeting").exists() else [
    sys.executable, "-m", "meeting.cli"]


def prepare_db(url: str, inventory: Path) -> None:
    migrate.upgrade(url)
    engine = make_engine(url)
    try:
        with session_scope(make_sessionmaker(engine)) as s:
            sites.sync(s, load(inventory))
    finally:
        engine.dispose()


def _scope(url: str) -> Any:
    engine = make_engine(url)
    return engine, session_scope(make_sessionmaker(engine))


def create_meeting(url: str, participants: list[str], *, start_in_s: float, minutes: float = 10,
                   host: str = "11", title: str = "Họp thử tác nhân") -> tuple[int, datetime]:
    start = (datetime.now(TZ) + timedelta(seconds=start_in_s)).replace(microsecond=0)
    data = MeetingIn.model_validate({"title": title, "start": start.isoformat(),
                                     "end": (start + timedelta(minutes=minutes)).isoformat(),
                                     "host_site": host, "participants": participants})
    engine, scope = _scope(url)
    try:
        with scope as s:
            m = meetings.create(s, Settings.load(url), data, "tests")
            return m.id, start
    finally:
        engine.dispose()


def site_tokens(url: str, site_ids: list[str], directory: Path) -> dict[str, Path]:
    """Issue a site token per site and write it as the playbook does: one file, mode 0600."""
    out: dict[str, Path] = {}
    engine, scope = _scope(url)
    try:
        with scope as s:
            for sid in site_ids:
                path = directory / f"token-{sid}"
                path.write_text(auth.issue_site_token(s, sid) + "\n")
                path.chmod(0o600)
                out[sid] = path
    finally:
        engine.dispose()
    return out


def revoke(url: str, site_id: str) -> None:
    engine, scope = _scope(url)
    try:
        with scope as s:
            auth.revoke_site_tokens(s, site_id)
    finally:
        engine.dispose()


def netns(ns: str | None) -> list[str]:
    return ["ip", "netns", "exec", ns] if ns else []


class Server:
    """``meeting serve`` in a namespace; ``kill()`` is a SIGKILL (a crash), ``start()`` again is the restart."""

    def __init__(self, ns: str | None, host: str, port: int, db_url: str, log: Path) -> None:
        self.ns, self.host, self.port, self.db_url, self.log = ns, host, port, db_url, log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO), "LIENTHONG_DB": self.db_url}
        self.mark()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [*netns(self.ns), *MEETING, "serve", "--host", self.host, "--port", str(self.port),
                 "--db", self.db_url, "--no-reminders"],
                stdout=log, stderr=log, env=env, cwd=REPO, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if b"startup complete" in self.log.read_bytes().split(b"--- start")[-1]:
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"meeting serve exited {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)
        raise AssertionError(f"meeting serve did not start in {timeout} s:\n{self.log.read_text()[-3000:]}")

    def mark(self) -> None:
        with self.log.open("ab") as log:
            log.write(b"\n--- start\n")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@dataclass
class AgentProc:
    """One ``meeting agent --json`` process; ``events`` holds (monotonic time, event doc)."""

    site: str
    proc: subprocess.Popen[str]
    events: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, ns: str | None, site: str, server: str, token_file: Path, *extra: str) -> AgentProc:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen(
            [*netns(ns), *MEETING, "agent", "--site", site, "--server", server, "--token-file", str(token_file),
             "--json", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO, start_new_session=True)
        agent = cls(site, proc)
        threading.Thread(target=agent._read_events, daemon=True).start()
        threading.Thread(target=agent._read_stderr, daemon=True).start()
        return agent

    def _read_events(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                try:
                    self.events.append((time.monotonic(), json.loads(line)))
                except ValueError:  # --json's final error document is indented over several lines
                    self.stderr.append(line.rstrip("\n"))

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line.rstrip("\n"))

    def wait(self, name: str, *, after: float = 0.0, timeout: float = 30,
             where: Callable[[dict[str, Any]], bool] = lambda _e: True) -> tuple[float, dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, ev in list(self.events):
                if at >= after and ev.get("event") == name and where(ev):
                    return at, ev
            if self.proc.poll() is not None and not any(e.get("event") == name for _, e in self.events):
                break
            time.sleep(0.05)
        raise AssertionError(f"agent {self.site}: no '{name}' event after {after:.1f} within {timeout} s; "
                             f"events {[e for _, e in self.events][-8:]}\nstderr:\n" + "\n".join(self.stderr[-30:]))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
