"""Deploy one device: connect, back up, plan, apply, verify, write memory — or restore the backup and say why.

Plan, then apply (STYLE §4): an empty plan means ``unchanged`` and no config command is sent at all. Every
failure after the first config line (a rejected line, a dropped session, a timeout, a verify mismatch) restores
the backup and verifies the restore; the device is then reported ``rolled_back`` with the reason.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conftool.devices.backup import BackupRepo, strip_volatile
from conftool.devices.confirm import Guard, GuardUnavailable, guard_for
from conftool.devices.normalize import normalize, unified_diff
from conftool.devices.plan import plan_text
from conftool.devices.session import ERROR_PATTERN, DeviceError, Target, connect, netmiko_params, running_config
from conftool.inventory import Inventory

logger = logging.getLogger(__name__)


@dataclass
class DeployResult:
    """One device's outcome (§9 statuses: changed|unchanged|rolled_back|failed|unreachable|unmanaged)."""

    site: str
    device: str
    status: str
    detail: str = ""
    changed: bool = False
    commands: list[str] = field(default_factory=list)
    diff: str = ""
    error: str | None = None
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # seconds per step: where a deploy's time goes

    def as_item(self) -> dict[str, Any]:
        return {"site": self.site, "device": self.device, "kind": "deploy", "status": self.status,
                "detail": self.detail, "changed": self.changed, "commands": self.commands, "diff": self.diff,
                "error": self.error, "seconds": round(self.seconds, 2),
                "phases": {k: round(v, 3) for k, v in self.phases.items()}}


@dataclass
class DeployOptions:
    dry_run: bool = True
    confirm_seconds: int = 45
    settle_seconds: float = 10.0  # longest wait for routes to reach the kernel before the management probe
    log_dir: Path | None = None  # per-device Netmiko session logs
    backups: BackupRepo | None = None


_DPLANE = re.compile(r"Route updates:\s*(\d+).*?Route update queue depth:\s*(\d+)", re.S)
_CFG_ROUTE = re.compile(r"^ip route (\S+) (\S+)(?: (\d+))?\s*$", re.M)
_RIB_STATIC = re.compile(r"^S\S*\s+(\S+) \[(\d+)/\d+\]", re.M)
_NHT = re.compile(r"^(\d+\.\d+\.\d+\.\d+)\n\s+(resolved|unresolved)", re.M)
SETTLE_STEP = 0.1  # seconds between two reads of zebra's state
IOS_SETTLE_S = 1.0


def _frr_static_settled(conn: Any, running: str) -> bool:
    """Every configured static route zebra can use is in its RIB, and no removed one is left.

    staticd sends a route with a nexthop address only once zebra has resolved that nexthop (NHT), and only
    while it is connected to zebra (a staticd that lost that race at start retries 10 s later — the lab used to
    start it so, see conftool/lab/router.py). A route whose nexthop is unresolved (its link is down) is
    legitimately absent, so it is not waited for.
    """
    configured = {(p, int(d or 1)): nh for p, nh, d in _CFG_ROUTE.findall(running)}
    rib = {(p, int(d)) for p, d in _RIB_STATIC.findall(str(conn.send_command("show ip route static",
                                                                             read_timeout=10)))}
    nht = dict(_NHT.findall(str(conn.send_command("show ip nht", read_timeout=10))))
    if not rib <= set(configured):
        return False  # a removed route is still there
    for key, nh in configured.items():
        usable = nht.get(nh) == "resolved" if re.fullmatch(r"[\d.]+", nh) else nh in ("Null0", "blackhole", "reject")
        if usable and key not in rib:
            return False
    return True


def settle(conn: Any, platform: str, limit: float, running: str = "") -> float:
    """Wait until the applied change is in the kernel, so the management probe tests the new forwarding state.

    Routes reach the kernel asynchronously (staticd -> zebra -> dataplane thread -> netlink). On FRR: every
    usable configured static route is in zebra's RIB (`show ip route static`, `show ip nht`), then zebra's
    dataplane route-update queue is empty and no update came in during one step. Cisco IOS: a short fixed
    pause (IOS_SETTLE_S). Other platforms, or an FRR whose output we cannot parse, wait the whole ``limit``.
    Returns the wait.
    """
    start = time.monotonic()
    if platform == "cisco_ios":
        # IOS applies a config line before it prints the next prompt (RIB and CEF included); a short pause lets
        # the forwarding plane catch up before the new-login proof, without FRR's asynchronous pipeline.
        time.sleep(min(limit, IOS_SETTLE_S))
        return min(limit, IOS_SETTLE_S)
    if platform != "frr":
        time.sleep(limit)
        return limit
    while not _frr_static_settled(conn, running):
        if time.monotonic() - start >= limit:
            return time.monotonic() - start
        time.sleep(SETTLE_STEP)
    last: tuple[str, str] | None = None
    while True:
        m = _DPLANE.search(str(conn.send_command("show zebra dplane", read_timeout=10)))
        if m is None:
            time.sleep(max(0.0, limit - (time.monotonic() - start)))
            return time.monotonic() - start
        cur = (m.group(1), m.group(2))
        if cur[1] == "0" and cur == last:
            return time.monotonic() - start
        if time.monotonic() - start >= limit:
            return time.monotonic() - start
        last = cur
        time.sleep(SETTLE_STEP)


def _same(a: str, b: str, platform: str) -> bool:
    return normalize(a, platform) == normalize(b, platform)


def _send(conn: Any, commands: list[str]) -> None:
    """Line by line, each line's echo awaited (Netmiko's cmd_verify), stopping at the first refused line.

    Tried and dropped: the whole plan in one write to FRR's vtysh (2 s faster on the province core's 160
    lines). FRR 8.4 then left static routes whose nexthop's interface address came in the same burst out of
    the kernel for good (config verified, routes missing: the end-to-end routing test failed).
    """
    from netmiko.exceptions import ConfigInvalidException

    try:
        conn.send_config_set(commands, error_pattern=ERROR_PATTERN, read_timeout=30, cmd_verify=True,
                             exit_config_mode=True)
    except ConfigInvalidException as exc:
        # Netmiko's message carries the device's own words ("% Unknown command: …"); keep the first line.
        msg = str(exc).strip().splitlines()
        raise DeviceError(f"device rejected a line: {msg[-1] if msg else 'config error'}") from None


class DeviceDeploy:
    """The whole lifecycle of one device's deploy, so the runner only schedules and collects."""

    def __init__(self, inv: Inventory, target: Target, intended: str, opts: DeployOptions) -> None:
        self.inv = inv
        self.t = target
        self.intended = intended
        self.opts = opts
        self.platform = target.device.platform
        self.log = (opts.log_dir / f"{target.name}.log") if opts.log_dir else None
        self.conn: Any = None
        self.backup: str | None = None
        self.guard: Guard | None = None
        self.phases: dict[str, float] = {}

    @contextlib.contextmanager
    def _phase(self, name: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            self.phases[name] = self.phases.get(name, 0.0) + time.monotonic() - start

    def _result(self, status: str, detail: str, **kw: Any) -> DeployResult:
        return DeployResult(site=self.t.site.id, device=self.t.name, status=status, detail=detail, **kw)

    def _reconnect(self) -> None:
        self.close()
        self.conn = connect(self.inv, self.t, self.log)

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.disconnect()
            except Exception:
                logger.debug("%s: disconnect failed", self.t.name, exc_info=True)
            self.conn = None

    def run(self) -> DeployResult:
        start = time.monotonic()
        try:
            res = self._run()
        finally:
            self.close()
        res.seconds = time.monotonic() - start
        res.phases = self.phases
        return res

    def _run(self) -> DeployResult:
        try:
            with self._phase("connect"):
                self.conn = connect(self.inv, self.t, self.log)
        except DeviceError as exc:
            return self._result("unreachable", str(exc), error=str(exc))
        try:
            with self._phase("backup"):
                running = running_config(self.conn, self.platform)
        except Exception as exc:
            return self._result("failed", f"cannot read the running config: {type(exc).__name__}",
                                error=str(exc))
        self.backup = running
        if self.opts.backups is not None:
            self.opts.backups.write(self.t.site.id, self.t.name, running)
        p = plan_text(running, self.intended, self.platform)
        diff = unified_diff(self.intended, running, self.platform, self.t.name)
        if p.empty:
            return self._result("unchanged", "already as intended")
        if self.opts.dry_run:
            return self._result("changed", f"would send {len(p.commands)} commands (dry run)",
                                commands=p.commands, diff=diff, changed=True)
        params = netmiko_params(self.inv, self.t)
        self.guard = guard_for(self.platform, params, self.conn)
        guard_note = ""
        if self.guard is not None:
            try:
                with self._phase("arm"):
                    self.guard.arm(self.opts.confirm_seconds, running)
            except GuardUnavailable as exc:  # nothing changed yet: deploy as without a guard, and say why
                self.guard = None
                guard_note = f" (no commit-confirm: {exc})"
            except DeviceError as exc:
                return self._result("failed", f"commit-confirm could not be armed, nothing changed: {exc}",
                                    error=str(exc), commands=p.commands, diff=diff)
        else:
            guard_note = " (no commit-confirm on this platform)"
        try:
            with self._phase("apply"):
                _send(self.conn, p.commands)
            with self._phase("verify"):
                after = running_config(self.conn, self.platform)
            if not _same(after, self.intended, self.platform):
                left = unified_diff(self.intended, after, self.platform, self.t.name)
                raise DeviceError("verify failed: running config differs from intended after apply:\n" + left)
            if self.guard is not None:
                # Prove the management path with a NEW session once the change is in the kernel (an established
                # session can outlive a change that blocks every new one); that session confirms. Only a
                # confirmed change is saved: an unconfirmed one never reaches the startup config.
                with self._phase("settle"):
                    settle(self.conn, self.platform, self.opts.settle_seconds, after)
                with self._phase("probe_confirm"):
                    self.guard.confirm_over_new_session()
        except Exception as exc:
            reason = str(exc) if isinstance(exc, DeviceError) else (
                f"SSH session lost during apply/verify ({type(exc).__name__})")
            return self._rollback(reason, p.commands, diff)
        try:
            with self._phase("save"):
                self._save()
        except Exception as exc:
            # Confirmed and verified, so not rolled back: the device runs the intended config, unsaved.
            return self._result("failed", f"{len(p.commands)} commands applied, verified and confirmed, but write "
                                f"memory failed ({type(exc).__name__}): running config is the intended one, the "
                                "saved config is still the old one — run the deploy again", commands=p.commands,
                                diff=diff, changed=True, error=str(exc))
        return self._result("changed", f"{len(p.commands)} commands applied, verified, saved{guard_note}",
                            commands=p.commands, diff=diff, changed=True)

    def _save(self) -> None:
        """`write memory`, over a new session if the old one died after the confirm."""
        try:
            self.conn.save_config()
        except Exception:
            logger.info("%s: write memory failed on the deploy session; retrying on a new one", self.t.name)
            self._reconnect()
            self.conn.save_config()

    def _rollback(self, reason: str, commands: list[str], diff: str) -> DeployResult:
        """Restore the backup ourselves if the session lives; else let the device-side watchdog do it."""
        assert self.backup is not None
        logger.warning("%s: deploy failed (%s); restoring the backup", self.t.name, reason.splitlines()[0])
        restored = False
        how = ""
        try:
            self._reconnect()
            if self.guard is not None:
                self.guard.session = self.conn
            now = running_config(self.conn, self.platform)
            back = plan_text(now, self.backup, self.platform)
            if not back.empty:
                _send(self.conn, back.commands)
            restored = _same(running_config(self.conn, self.platform), self.backup, self.platform)
            how = "backup restored over SSH"
            if self.guard is not None and self.guard.state().startswith("restored"):
                how = "device-side watchdog restored the backup (management path was cut)"
            if restored and self.guard is not None:
                with contextlib.suppress(DeviceError):
                    self.guard.confirm()  # the backup is back; stop the timer from re-applying it
        except Exception:
            logger.info("%s: cannot restore over SSH, waiting for the device-side watchdog", self.t.name)
        if not restored and self.guard is not None:
            deadline = time.monotonic() + self.guard.window_s + 30
            while time.monotonic() < deadline and not restored:
                time.sleep(3)
                try:
                    self._reconnect()
                    if self.guard is not None:
                        self.guard.session = self.conn
                    restored = _same(running_config(self.conn, self.platform), self.backup, self.platform)
                    how = "device-side watchdog restored the backup (management path was cut)"
                except Exception:
                    continue
        if restored:
            return self._result("rolled_back", f"{reason.splitlines()[0]} — {how}", commands=commands, diff=diff,
                                error=reason)
        return self._result("failed", f"{reason.splitlines()[0]} — restore NOT verified; check the device",
                            commands=commands, diff=diff, error=reason)


def backup_text(config: str) -> str:
    return strip_volatile(config)
