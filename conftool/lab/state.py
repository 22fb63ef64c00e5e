"""The lab's record of everything it made, written as it goes so `down` can undo a half-built lab.

Every namespace, root-namespace link, process (PID plus its kernel start time, so a recycled PID is never
killed) and file tree is recorded *before* it is created; `down` tolerates entries that never came to be.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conftool.inventory.secrets import default_state_dir
from conftool.lab.errors import LabError
from conftool.lab.plan import LabPlan

logger = logging.getLogger(__name__)

STATE_VERSION = 1


def lab_dir(state_root: Path | None = None) -> Path:
    """`$LIENTHONG_STATE/lab` — the only place the lab writes files."""
    return ((state_root or default_state_dir()) / "lab").absolute()  # daemons start with cwd "/"


@contextlib.contextmanager
def lab_lock(state_root: Path | None = None) -> Iterator[None]:
    """Serialise commands that change the lab (up, down, faults): flock on the state directory itself,
    so no lock file is left behind."""
    root = state_root or default_state_dir()
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def proc_start_time(pid: int) -> int | None:
    """The kernel start time of a process (field 22 of /proc/PID/stat), or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2:].split()
    try:
        if fields[0] == "Z":  # a zombie has finished its work
            return None
        return int(fields[19])
    except (IndexError, ValueError):
        return None


@dataclass
class ProcRecord:
    """One process the lab started: which node, what for, and how to recognise it again."""

    pid: int
    start: int
    name: str  # anchor | zebra | staticd | sshd | syslog | dns | ntp ...
    node: str  # site id, or "svc"

    def alive(self) -> bool:
        return proc_start_time(self.pid) == self.start


@dataclass
class LabState:
    path: Path
    status: str = "building"  # building | running
    started_at: float = field(default_factory=time.time)
    plan: LabPlan | None = None
    namespaces: list[str] = field(default_factory=list)
    root_links: list[str] = field(default_factory=list)
    processes: list[ProcRecord] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    mounts: list[str] = field(default_factory=list)  # root-namespace mounts made (only /run/netns, by iproute2)
    created_dirs: list[str] = field(default_factory=list)  # outside the state dir (only /run/netns)
    faults: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    # link emulation: {"backend": netem|forwarder, "profile": name|None, "links": {"SITE:KIND": params}}
    impair: dict[str, Any] = field(default_factory=dict)
    # root-namespace kernel settings the lab changed, with their OLD values (restored at `down`): neigh.py
    sysctls: dict[str, int] = field(default_factory=dict)

    def enter_argv(self, node: str, proc: str, what: str) -> list[str]:
        """Prefix that runs a command inside a node's network, mount and UTS namespaces, held by its ``proc``.

        Routers and hosts keep their namespaces alive with one long-lived process each (the anchor, or the host's
        sshd); entering through it reaches the node's private /etc and /run, which `ip netns exec` would not.
        """
        anchor = self.proc(node, proc)
        if anchor is None or not anchor.alive():
            raise LabError(f"{what} has no live namespace anchor: run `conftool lab down` then `conftool lab up`")
        return ["nsenter", "-t", str(anchor.pid), "-m", "-n", "-u", "--"]

    # --- persistence -------------------------------------------------------------------------------
    def save(self) -> None:
        """Write atomically so a crash never leaves a torn state file."""
        doc = {
            "version": STATE_VERSION,
            "status": self.status,
            "started_at": self.started_at,
            "plan": self.plan.to_dict() if self.plan else None,
            "namespaces": self.namespaces,
            "root_links": self.root_links,
            "processes": [vars(p) for p in self.processes],
            # Router mounts live in private mount namespaces and vanish with them; only iproute2's own
            # /run/netns mount (when the lab's `ip netns add` was the first) is recorded here.
            "mounts": self.mounts,
            "created_dirs": self.created_dirs,
            "files": self.files,
            "faults": self.faults,
            "timings": self.timings,
            "impair": self.impair,
            "sysctls": self.sysctls,
        }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=1, ensure_ascii=False))
        os.replace(tmp, self.path)

    @classmethod
    def load(cls, path: Path) -> LabState | None:
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            logger.warning("lab state %s is unreadable (%s): treating it as stale", path, exc)
            return cls(path=path, status="corrupt")
        plan = LabPlan.from_dict(doc["plan"]) if doc.get("plan") else None
        return cls(path=path, status=doc.get("status", "building"), started_at=doc.get("started_at", 0.0),
                   plan=plan, namespaces=list(doc.get("namespaces", [])),
                   root_links=list(doc.get("root_links", [])),
                   processes=[ProcRecord(**p) for p in doc.get("processes", [])],
                   files=list(doc.get("files", [])), mounts=list(doc.get("mounts", [])),
                   created_dirs=list(doc.get("created_dirs", [])), faults=list(doc.get("faults", [])),
                   timings=dict(doc.get("timings", {})), impair=dict(doc.get("impair", {})),
                   sysctls={k: int(v) for k, v in doc.get("sysctls", {}).items()})

    # --- recording ---------------------------------------------------------------------------------
    def add_process(self, pid: int, name: str, node: str) -> ProcRecord:
        start = proc_start_time(pid)
        rec = ProcRecord(pid=pid, start=start if start is not None else -1, name=name, node=node)
        self.processes.append(rec)
        return rec

    def live_processes(self) -> list[ProcRecord]:
        return [p for p in self.processes if p.alive()]

    def proc(self, node: str, name: str) -> ProcRecord | None:
        """The latest record of a daemon on a node."""
        return next((p for p in reversed(self.processes) if p.node == node and p.name == name), None)

    def is_live(self) -> bool:
        """A lab is live while any process it started still runs."""
        return bool(self.live_processes())
