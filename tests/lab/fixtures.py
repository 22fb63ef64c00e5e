"""The lab for the tests: `small` brought up once per session with an isolated state dir, always torn down.

A plugin module, so tests outside tests/lab can use it too: `pytest_plugins = ["tests.lab.fixtures"]` in the root
conftest. Only one lab runs per machine, so every test of a session shares this one.

Tests that need to take the lab down (lifecycle, crash cleanup) use `LabSession.down()`; the next test that
needs a running lab brings it back with `lab` (up takes about a second).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
CONFTOOL = [str(Path(sys.executable).parent / "conftool")]  # the venv's entry point, run as a subprocess


def machine_snapshot() -> dict[str, Any]:
    """What the lab could leave behind: namespaces, root links, mounts, live processes of lab binaries."""
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = json.loads(subprocess.run(["ip", "-j", "link"], capture_output=True, text=True).stdout)
    procs = set()
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            stat = (p / "stat").read_text()
            if stat[stat.rfind(")") + 2] == "Z":
                continue
            comm = (p / "comm").read_text().strip()
        except OSError:
            continue
        if comm in ("zebra", "staticd", "sshd", "chronyd", "dnsmasq", "sleep", "vtysh"):
            procs.add((int(p.name), comm))
    return {
        "netns": sorted(line.split()[0] for line in netns.splitlines() if line.strip()),
        "links": sorted(str(e["ifname"]) for e in links),
        "mounts": Path("/proc/mounts").read_text().splitlines(),
        "procs": procs,
        "etc": {f: Path(f).read_bytes() for f in ("/etc/passwd", "/etc/group", "/etc/shadow", "/etc/pam.d/frr")
                if Path(f).exists()},
    }


@dataclass
class LabSession:
    state: Path
    env: dict[str, str]
    is_up: bool = False
    before: dict[str, Any] = field(default_factory=dict)

    def cli(self, *args: str, check: bool = False, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        cp = subprocess.run([*CONFTOOL, *args], capture_output=True, text=True, env=self.env, timeout=timeout,
                            cwd=REPO)
        if check and cp.returncode != 0:
            raise AssertionError(f"conftool {' '.join(args)} → {cp.returncode}\n{cp.stdout}\n{cp.stderr}")
        return cp

    def up(self) -> None:
        if not self.is_up:
            self.cli("lab", "up", "--json", check=True)
            self.is_up = True

    def down(self) -> None:
        self.cli("lab", "down", check=True)
        self.is_up = False

    def status(self) -> dict[str, Any]:
        cp = self.cli("lab", "status", "--json")
        return dict(json.loads(cp.stdout))

    def exec(self, node: str, *cmd: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return self.cli("lab", "exec", node, "--", *cmd, timeout=timeout)

    @property
    def key(self) -> Path:
        return self.state / "lab" / "keys" / "netops_ed25519"


@pytest.fixture(scope="session")
def lab_session() -> Iterator[LabSession]:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (network namespaces)")
    for tool in ("/usr/lib/frr/zebra", "/usr/sbin/sshd", "/usr/sbin/chronyd", "/usr/sbin/dnsmasq"):
        if not Path(tool).exists():
            pytest.fail(f"{tool} missing: run scripts/install.sh")
    with lab_lock():
        state = Path(tempfile.mkdtemp(prefix="lt-lab-state-"))
        env = {**os.environ, "LIENTHONG_STATE": str(state),
               "LIENTHONG_INVENTORY": str(REPO / "inventory" / "dien-bien")}
        session = LabSession(state=state, env=env, before=machine_snapshot())
        try:
            yield session
        finally:
            session.cli("lab", "down")
            shutil.rmtree(state, ignore_errors=True)


LOCK = Path("/tmp/lt-lab-tests.lock")


@contextlib.contextmanager
def lab_lock(timeout: float = 1800) -> Iterator[None]:
    """One lab on the machine at a time, also across test processes: hold an exclusive lock while a lab lives."""
    import fcntl
    import time

    with LOCK.open("a") as f:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail(f"another test process held the lab lock {LOCK} for {timeout:.0f} s")
                time.sleep(2)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@pytest.fixture
def lab(lab_session: LabSession) -> LabSession:
    """A running `small` lab."""
    lab_session.up()
    return lab_session
