"""The audit daemon: audits on a cron schedule, one at a time, with alerts and optional config backups.

Cron expressions are parsed by APScheduler's `CronTrigger` (a well-kept implementation of the crontab grammar and
its time-zone/DST corner cases); the loop around it is ours so that the clock is injectable — tests drive a
day of 4-hourly runs in milliseconds — and so that SIGTERM interrupts the wait at once:

* one run at a time: runs happen in the loop's own thread, and a lock file in the state dir keeps a second
  daemon from starting on the same state;
* missed runs are coalesced: when a run overran the next fire time(s), or the daemon was down past one
  (the newest stored run is older than the last fire time), exactly one catch-up run happens, then the schedule
  resumes;
* a failing audit, a failing backup or a broken alert channel is logged and the loop goes on.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import IO, Any, Protocol
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]

from conftool.audit.errors import AuditError
from conftool.audit.results import RunRecord
from conftool.errors import ConftoolError

logger = logging.getLogger(__name__)

DEFAULT_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
MAX_WAIT_CHUNK_S = 60.0  # re-read the clock at least this often (suspend, NTP steps)


class Clock(Protocol):
    def now(self) -> datetime: ...

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        """Sleep up to `seconds`; True when `stop` was set (return at once then)."""
        ...


class RealClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        return stop.wait(min(max(seconds, 0.0), MAX_WAIT_CHUNK_S))


def trigger(expr: str, tz: tzinfo = DEFAULT_TZ) -> CronTrigger:
    try:
        return CronTrigger.from_crontab(expr, timezone=tz)
    except ValueError as exc:
        raise AuditError(f"--cron {expr!r}: {exc}; write five fields, e.g. \"0 */4 * * *\" (every 4 hours)") from None


def next_fire(trig: CronTrigger, after: datetime) -> datetime:
    """The first fire time strictly after `after`."""
    t = trig.get_next_fire_time(None, after + timedelta(seconds=1))
    if t is None:  # pragma: no cover - a crontab always fires again
        raise AuditError("the cron expression never fires again")
    out: datetime = t.astimezone(UTC)
    return out


@dataclass
class Tick:
    """What one scheduled run did (logged, and handy for tests)."""

    fire_time: datetime
    started: datetime
    run_id: int | None = None
    ok: bool = True
    coalesced: int = 0
    alerts: dict[str, Any] = field(default_factory=dict)
    backup: str | None = None
    error: str | None = None
    expected_error: bool = False  # a ConftoolError (bad input, no target) rather than a bug


Job = Callable[[datetime], Tick]


class Scheduler:
    """`run(stop)` loops until `stop` is set (SIGTERM) or `max_runs` runs happened."""

    def __init__(self, expr: str, job: Job, *, clock: Clock | None = None, tz: tzinfo = DEFAULT_TZ,
                 last_run_at: datetime | None = None, run_now: bool = False) -> None:
        self.expr = expr
        self.trigger = trigger(expr, tz)
        self.job = job
        self.clock = clock or RealClock()
        self.last_run_at = last_run_at
        self.run_now = run_now
        self.ticks: list[Tick] = []
        self.next_at: datetime | None = None

    def _first(self, now: datetime) -> datetime:
        """Now when a fire time was missed while we were down (or --run-now), else the next fire time."""
        if self.run_now:
            return now
        if self.last_run_at is not None:
            missed = next_fire(self.trigger, self.last_run_at)
            if missed <= now:
                logger.warning("a scheduled run (%s) was missed while the scheduler was down: catching up now",
                               missed.isoformat())
                return now
        return next_fire(self.trigger, now - timedelta(seconds=1))

    def plan(self) -> datetime:
        """The first run's time (catch-up, --run-now or the next fire time); `run` starts from it."""
        if self.next_at is None:
            self.next_at = self._first(self.clock.now())
        return self.next_at

    def run(self, stop: threading.Event, max_runs: int | None = None) -> list[Tick]:
        self.next_at = self.plan()
        logger.info("scheduler started (%s); next run at %s", self.expr, self.next_at.isoformat())
        while not stop.is_set():
            now = self.clock.now()
            delay = (self.next_at - now).total_seconds()
            if delay > 0:
                if self.clock.wait(delay, stop):
                    break
                continue
            fire = self.next_at
            tick = self._tick(fire)
            after = self.clock.now()
            nxt = next_fire(self.trigger, fire)
            skipped = 0
            while nxt <= after:  # the run overran one or more fire times: coalesce them into the next one
                skipped += 1
                nxt = next_fire(self.trigger, nxt)
            if skipped:
                logger.warning("run at %s overran %d fire time(s); they are coalesced (not queued)",
                               fire.isoformat(), skipped)
                tick.coalesced = skipped
            self.next_at = nxt
            self.ticks.append(tick)
            logger.info("next run at %s", nxt.isoformat())
            if max_runs is not None and len(self.ticks) >= max_runs:
                break
        logger.info("scheduler stopped after %d run(s)", len(self.ticks))
        return self.ticks

    def _tick(self, fire: datetime) -> Tick:
        started = self.clock.now()
        try:
            return self.job(fire)
        except Exception as exc:  # a job must never kill the daemon
            logger.exception("scheduled run at %s failed", fire.isoformat())
            return Tick(fire, started, ok=False, error=f"{exc.__class__.__name__}: {exc}")


@dataclass
class AuditJob:
    """One scheduled run: audit → store → alerts → (backup). Every step is guarded on its own."""

    audit: Callable[[], RunRecord]
    save: Callable[[RunRecord], int]
    alert: Callable[[RunRecord, datetime], dict[str, Any]] | None = None
    backup: Callable[[], str | None] | None = None
    clock: Clock = field(default_factory=RealClock)

    def __call__(self, fire: datetime) -> Tick:
        tick = Tick(fire, self.clock.now())
        record: RunRecord | None = None
        try:
            record = self.audit()
            tick.run_id = self.save(record)
        except ConftoolError as exc:  # expected (no lab, bad selector, store down): the message says it all
            logger.error("scheduled audit at %s failed: %s", fire.isoformat(), exc)
            tick.ok, tick.error, tick.expected_error = False, f"{exc.__class__.__name__}: {exc}", True
            record = None
        except Exception as exc:
            logger.exception("scheduled audit at %s failed", fire.isoformat())
            tick.ok, tick.error = False, f"{exc.__class__.__name__}: {exc}"
            record = None
        if record is not None and self.alert is not None:
            try:
                tick.alerts = self.alert(record, self.clock.now())
            except Exception as exc:
                logger.exception("alerting for run %s failed", tick.run_id)
                tick.alerts = {"error": f"{exc.__class__.__name__}: {exc}"}
        if self.backup is not None:
            try:
                tick.backup = self.backup()
            except Exception as exc:
                logger.exception("scheduled backup failed")
                tick.backup = f"failed: {exc.__class__.__name__}: {exc}"
        logger.info("scheduled run at %s: run %s, alerts %s, backup %s", fire.isoformat(), tick.run_id,
                    tick.alerts, tick.backup)
        return tick


class ScheduleLock:
    """An flock on `<state>/audit-schedule.lock`: one daemon per state dir, released by the kernel on exit."""

    def __init__(self, state: Path) -> None:
        self.path = state / "audit-schedule.lock"
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = self.path.open("a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            other = fh.read().strip()
            fh.close()
            raise AuditError(f"another audit scheduler holds {self.path} (pid {other or '?'}); stop it first") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


def systemd_units(args: list[str], *, calendar: str, exe: str, user: str = "root",
                  env: dict[str, str] | None = None) -> dict[str, str]:
    """A oneshot service + timer pair for hosts that prefer systemd to a daemon (`--print-systemd`).

    The timer runs `conftool audit schedule --once …` at the OnCalendar= time; Persistent=true catches up a run
    missed while the host was off (the daemon's coalescing, done by systemd).
    """
    envs = "".join(f"Environment={k}={v}\n" for k, v in sorted((env or {}).items()))
    cmd = " ".join([exe, "audit", "schedule", "--once", *args])
    service = (
        "[Unit]\nDescription=Liên Thông network audit (one run, alerts on change)\n"
        "Wants=network-online.target\nAfter=network-online.target\n\n"
        f"[Service]\nType=oneshot\nUser={user}\n{envs}ExecStart={cmd}\n"
        "# exit 1 means some checks failed: that is a result, not a unit failure\nSuccessExitStatus=1\n"
    )
    timer = (
        "[Unit]\nDescription=Liên Thông network audit schedule\n\n"
        f"[Timer]\nOnCalendar={calendar}\nPersistent=true\nUnit=lienthong-audit.service\n\n"
        "[Install]\nWantedBy=timers.target\n"
    )
    return {"lienthong-audit.service": service, "lienthong-audit.timer": timer}


def cron_to_oncalendar(expr: str, tz: str = "Asia/Ho_Chi_Minh") -> str:
    """Translate the common 5-field crontab forms into systemd's OnCalendar= (lists, ranges and */N steps)."""
    fields = expr.split()
    if len(fields) != 5:
        raise AuditError(f"--cron {expr!r}: expected five fields")
    minute, hour, dom, month, dow = fields

    def conv(f: str, lo: int) -> str:
        if f == "*":
            return "*"
        if f.startswith("*/") and f[2:].isdigit():
            return f"{lo:02d}/{int(f[2:])}"

        def one(p: str) -> str:
            if p.isdigit():
                return f"{int(p):02d}"
            if "-" in p and all(x.isdigit() for x in p.split("-", 1)):
                a, b = p.split("-", 1)
                return f"{int(a):02d}..{int(b):02d}"
            raise AuditError(f"--cron {expr!r}: {f!r} cannot be translated for systemd; use numbers, lists, "
                             "ranges and */N")

        return ",".join(one(p) for p in f.split(","))

    names = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    days = ""
    if dow != "*":
        parts = []
        for p in dow.split(","):
            if "-" in p:
                a, b = p.split("-")
                parts.append(f"{names[int(a)]}..{names[int(b)]}")
            elif p.isdigit():
                parts.append(names[int(p)])
            else:
                raise AuditError(f"--cron {expr!r}: day-of-week {p!r} cannot be translated for systemd; "
                                 "use numbers 0-7, lists and ranges")
        days = ",".join(parts) + " "
    return f"{days}*-{conv(month, 1)}-{conv(dom, 1)} {conv(hour, 0)}:{conv(minute, 0)}:00 {tz}"
