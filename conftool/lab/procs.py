"""Starting and stopping the lab's processes by PID, never by name."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from conftool.lab.errors import LabError
from conftool.lab.state import LabState, ProcRecord, proc_start_time

logger = logging.getLogger(__name__)

POLL_S = 0.02


class Recorder:
    """Thread-safe access to the lab state while many routers start at once."""

    SAVE_EVERY_S = 0.25  # `down` also finds unrecorded processes by namespace, so saves may be throttled

    def __init__(self, state: LabState) -> None:
        self.state = state
        self.lock = threading.Lock()
        self._saved = 0.0

    def spawn(self, argv: Sequence[str], log: Path, name: str, node: str) -> ProcRecord:
        """Start a foreground process in its own session; its PID is recorded at once."""
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            try:
                p = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True, cwd="/", close_fds=True)
            except FileNotFoundError:
                raise LabError(f"{argv[0]} is not installed: run scripts/install.sh") from None
        with self.lock:
            rec = self.state.add_process(p.pid, name, node)
            if time.monotonic() - self._saved > self.SAVE_EVERY_S:
                self.state.save()
                self._saved = time.monotonic()
        return rec

    def save(self) -> None:
        with self.lock:
            self.state.save()
            self._saved = time.monotonic()


def wait_for(check: Callable[[], bool], timeout: float, what: str, log: Path | None = None) -> None:
    """Poll until `check()` holds; the error quotes the end of the relevant log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(POLL_S)
    tail = ""
    if log is not None and log.exists():
        tail = " — log " + str(log) + ": " + " | ".join(log.read_text(errors="replace").splitlines()[-5:])
    raise LabError(f"{what} did not happen within {timeout:.0f} s{tail}")


def kill_pids(pids: Iterable[int], grace: float = 3.0) -> None:
    """SIGTERM, wait, then SIGKILL what is left. PIDs are given with their start time checked by the caller."""
    targets = {pid: proc_start_time(pid) for pid in pids}
    targets = {pid: st for pid, st in targets.items() if st is not None}
    for pid in targets:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if all(proc_start_time(pid) != st for pid, st in targets.items()):
            return
        time.sleep(POLL_S)
    for pid, st in targets.items():
        if proc_start_time(pid) == st:
            logger.warning("process %d did not stop on SIGTERM: killing it", pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(proc_start_time(p) == st for p, st in targets.items()):
        time.sleep(POLL_S)


def stop(records: Iterable[ProcRecord], grace: float = 3.0) -> None:
    kill_pids([r.pid for r in records if r.alive()], grace)
