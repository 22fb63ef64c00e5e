"""Turn ansible-runner's event stream into per-host results and progress updates.

Counts come from the final `playbook_on_stats` event (Ansible's own tally); the events before it give the
progress and the one line an engineer needs for a failure: the task's name and the module's message.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

MAX_DETAIL = 300


@dataclass
class HostResult:
    """One host's outcome; the §9 item and the table row are views of it."""

    host: str
    site: str
    status: str = "ok"  # ok | changed | failed | unreachable
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0
    task: str | None = None  # the task that failed / found the host unreachable
    message: str | None = None
    diffs: list[tuple[str, str]] = field(default_factory=list)  # (task, unified diff) with --diff

    def item(self) -> dict[str, Any]:
        detail: dict[str, Any] = {"ok": self.ok, "changed": self.changed, "failed": self.failed,
                                  "unreachable": self.unreachable, "skipped": self.skipped}
        if self.task:
            detail["task"] = self.task
        if self.message:
            detail["message"] = self.message
        if self.diffs:
            detail["diff"] = [{"task": t, "diff": d} for t, d in self.diffs]
        return {"site": self.site, "device": self.host, "kind": "play", "status": self.status, "detail": detail}


@dataclass
class HostProgress:
    done: int = 0
    changed: int = 0
    last_task: str = ""
    finished: bool = False
    status: str = "running"


def _unreachable_message(res: dict[str, Any]) -> str:
    """Plain Ansible says "Failed to connect to the host via ssh: …"; mitogen (our default strategy) only
    "Task failed: Connection timed out." — say what could not be reached either way."""
    text = _message(res)
    return text if "ssh" in text.lower() else f"no SSH connection: {text}"


def _message(res: dict[str, Any]) -> str:
    """The useful part of a module result: msg, else stderr, else the return code — one short line."""
    if res.get("_ansible_no_log") or res.get("censored"):
        return "(output hidden: no_log)"
    parts: list[str] = []
    msg = res.get("msg")
    if msg:
        parts.append(str(msg))
    stderr = str(res.get("stderr") or "").strip()
    if stderr and stderr not in parts:
        parts.append(stderr.splitlines()[-1])
    if not parts and "rc" in res:
        parts.append(f"rc={res['rc']}")
    if not parts and res.get("results"):  # a loop: the first failing item
        for r in res["results"]:
            if isinstance(r, dict) and r.get("failed"):
                return _message(r)
    text = " — ".join(parts) or "failed"
    text = " ".join(text.split())
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 1] + "…"


def _diff_text(diff: Any) -> str:
    """Ansible's diff result (dict or list of dicts: before/after[_header], or prepared text) as a unified diff."""
    import difflib

    parts: list[str] = []
    for d in diff if isinstance(diff, list) else [diff]:
        if not isinstance(d, dict):
            continue
        if d.get("prepared"):
            parts.append(str(d["prepared"]))
            continue
        before, after = d.get("before"), d.get("after")
        if not isinstance(before, str) or not isinstance(after, str) or before == after:
            if isinstance(before, dict) and isinstance(after, dict) and before != after:  # e.g. file state/mode
                parts.append(f"- {before}\n+ {after}")
            continue
        parts.append("".join(difflib.unified_diff(
            before.splitlines(keepends=True), after.splitlines(keepends=True),
            fromfile=str(d.get("before_header") or "before"), tofile=str(d.get("after_header") or "after"))))
    return "\n".join(p.rstrip("\n") for p in parts if p)


@dataclass
class EventCollector:
    """The `event_handler` for ansible_runner.run; thread-safe, calls `on_progress(host, HostProgress)`."""

    sites: dict[str, str]
    on_progress: Callable[[str, HostProgress], None] | None = None
    progress: dict[str, HostProgress] = field(default_factory=dict)
    first_error: dict[str, tuple[str, str]] = field(default_factory=dict)
    diffs: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    stats: dict[str, dict[str, int]] | None = None
    output_tail: deque[str] = field(default_factory=lambda: deque(maxlen=20))
    task_starts: list[tuple[str, float]] = field(default_factory=list)  # (task, monotonic time) for the bench
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, event: dict[str, Any]) -> bool:
        kind = str(event.get("event", ""))
        data = event.get("event_data") or {}
        with self._lock:
            if kind == "playbook_on_stats":
                self.stats = {k: dict(data.get(k) or {}) for k in
                              ("ok", "changed", "failures", "dark", "skipped", "ignored", "rescued")}
            elif kind.startswith("runner_on_") or kind.startswith("runner_item_on_"):
                self._host_event(kind, data)
            elif kind in ("playbook_on_task_start", "playbook_on_handler_task_start"):
                self.task_starts.append((str(data.get("task") or ""), time.monotonic()))
            elif kind in ("verbose", "error", "warning") and event.get("stdout"):
                self.output_tail.append(str(event["stdout"]))
        return False  # never write events to disk: results may hold configuration contents

    def _host_event(self, kind: str, data: dict[str, Any]) -> None:
        host = str(data.get("host") or "")
        if not host or kind.startswith("runner_item_on_") or kind == "runner_on_start":
            return
        p = self.progress.setdefault(host, HostProgress())
        task = str(data.get("task") or "")
        res = data.get("res") or {}
        p.last_task = task
        if kind in ("runner_on_ok", "runner_on_skipped", "runner_on_failed", "runner_on_unreachable"):
            p.done += 1
        if kind == "runner_on_ok" and res.get("changed"):
            p.changed += 1
            if res.get("diff") and not (res.get("_ansible_no_log") or res.get("censored")):
                text = _diff_text(res["diff"])
                if text:
                    self.diffs.setdefault(host, []).append((task, text))
        if kind == "runner_on_failed" and not data.get("ignore_errors"):
            self.first_error.setdefault(host, (task, _message(res)))
            p.finished, p.status = True, "failed"
        if kind == "runner_on_unreachable":
            self.first_error.setdefault(host, (task, _unreachable_message(res)))
            p.finished, p.status = True, "unreachable"
        if self.on_progress is not None:
            self.on_progress(host, p)

    def results(self) -> list[HostResult]:
        """Per-host results for every host Ansible reported on, in inventory order."""
        st = self.stats or {}
        seen: set[str] = set()
        for counts in st.values():
            seen.update(counts)
        seen.update(self.progress)
        out: list[HostResult] = []
        for host in sorted(seen, key=lambda h: (self.sites.get(h, "~"), h)):
            r = HostResult(host=host, site=self.sites.get(host, ""),
                           ok=st.get("ok", {}).get(host, 0), changed=st.get("changed", {}).get(host, 0),
                           failed=st.get("failures", {}).get(host, 0), unreachable=st.get("dark", {}).get(host, 0),
                           skipped=st.get("skipped", {}).get(host, 0))
            if not st and host in self.progress:  # the run died before its stats: take what the events said
                p = self.progress[host]
                r.ok, r.changed = p.done, p.changed
                r.failed = int(p.status == "failed")
                r.unreachable = int(p.status == "unreachable")
            if r.unreachable:
                r.status = "unreachable"
            elif r.failed:
                r.status = "failed"
            elif r.changed:
                r.status = "changed"
            if host in self.first_error and r.status in ("failed", "unreachable"):
                r.task, r.message = self.first_error[host]
            r.diffs = self.diffs.get(host, [])
            out.append(r)
        return out
