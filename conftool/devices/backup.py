"""Running-config backups in a git repository under the state dir: one commit per run, volatile lines removed.

Git gives the NOC history, blame and diff for free; filtering volatile lines (timestamps, uptime, FRR's version
banner, crypto checksums) makes an unchanged device produce no diff at all.
"""

from __future__ import annotations

import logging
import re
import subprocess
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from conftool.errors import ConftoolError

logger = logging.getLogger(__name__)

_VOLATILE = [re.compile(p) for p in (
    r"^Building configuration",
    r"^Current configuration\s*:",
    r"^! Last configuration change",
    r"^! NVRAM config last updated",
    r"^! Time:",
    r"^ntp clock-period",
    r"^frr version ",
    r"^Uptime",
    r".*\buptime\b.*",
    r"^# \w{3}/\d{2}/\d{4} \d{2}:\d{2}:\d{2} by RouterOS",  # RouterOS export header
    r"^# software id",
    r"^!Software Version",
    r"^!Last configuration was",
    r"^ *cryptochecksum:",
    r"^: (Saved|Written by)",
)]


def strip_volatile(text: str) -> str:
    """The config as the device keeps it, minus lines that change without anyone changing the config."""
    out = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if any(p.match(line) for p in _VOLATILE):
            continue
        out.append(line.rstrip())
    while out and not out[-1]:
        out.pop()
    return "\n".join(out) + "\n"


class BackupRepo:
    """A git repository of running configs: ``<site>/<hostname>.cfg``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()  # deploy workers write concurrently; git init and commits must not race

    def _git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(["git", "-C", str(self.path), *args], capture_output=True, text=True,
                                  check=check, timeout=60)
        except FileNotFoundError:
            raise ConftoolError("git is not installed: run scripts/install.sh") from None
        except subprocess.CalledProcessError as exc:
            raise ConftoolError(f"backup repository {self.path}: git {args[0]} failed: {exc.stderr.strip()}") from None

    def ensure(self) -> None:
        with self._lock:
            if (self.path / ".git").is_dir():
                return
            self.path.mkdir(parents=True, exist_ok=True)
            self._git("init", "-q")
            self._git("config", "user.name", "Liên Thông conftool")
            self._git("config", "user.email", "conftool@localhost")

    def file_for(self, site: str, hostname: str) -> Path:
        return self.path / site / f"{hostname}.cfg"

    def write(self, site: str, hostname: str, config: str) -> Path:
        self.ensure()
        f = self.file_for(site, hostname)
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(strip_volatile(config), encoding="utf-8")
        return f

    def read(self, site: str, hostname: str) -> str | None:
        f = self.file_for(site, hostname)
        return f.read_text(encoding="utf-8") if f.exists() else None

    def commit(self, sites: Iterable[str], what: str = "backup") -> str | None:
        """Commit everything written in this run; returns the commit id, or None when nothing changed."""
        self.ensure()
        self._git("add", "-A")
        if self._git("diff", "--cached", "--quiet", check=False).returncode == 0:
            return None
        ids = sorted(set(sites))
        shown = ", ".join(ids[:20]) + (f" … (+{len(ids) - 20})" if len(ids) > 20 else "")
        when = datetime.now(UTC).astimezone().isoformat(timespec="seconds")
        self._git("commit", "-q", "-m", f"{what} {when}: {len(ids)} sites: {shown}")
        return self._git("rev-parse", "HEAD").stdout.strip()

    def log(self, n: int = 20) -> list[str]:
        if not (self.path / ".git").is_dir():
            return []
        out = self._git("log", f"-{n}", "--format=%h %s", check=False).stdout
        return [ln for ln in out.splitlines() if ln]
