"""Deploy one device: connect, back up, plan, apply, verify, write memory — or restore the backup and say why.

Plan, then apply (STYLE §4): an empty plan means ``unchanged`` and no config command is sent at all. Every
failure after the first config line (a rejected line, a dropped session, a timeout, a verify mismatch) restores
the backup and verifies the restore; the device is then reported ``rolled_back`` with the reason.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conftool.devices.backup import BackupRepo, strip_volatile
from conftool.devices.confirm import Guard, guard_for
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

    def as_item(self) -> dict[str, Any]:
        return {"site": self.site, "device": self.device, "kind": "deploy", "status": self.status,
                "detail": self.detail, "changed": self.changed, "commands": self.commands, "diff": self.diff,
                "error": self.error, "seconds": round(self.seconds, 2)}


@dataclass
class DeployOptions:
    dry_run: bool = True
    confirm_seconds: int = 45
    settle_seconds: float = 3.0  # routes reach the kernel asynchronously; probe management only after this
    log_dir: Path | None = None  # per-device Netmiko session logs
    backups: BackupRepo | None = None


def _same(a: str, b: str, platform: str) -> bool:
    return normalize(a, platform) == normalize(b, platform)


def _send(conn: Any, commands: list[str]) -> None:
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
        return res

    def _run(self) -> DeployResult:
        try:
            self.conn = connect(self.inv, self.t, self.log)
        except DeviceError as exc:
            return self._result("unreachable", str(exc), error=str(exc))
        try:
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
        self.guard = guard_for(self.platform, params)
        guard_note = ""
        if self.guard is not None:
            try:
                self.guard.arm(self.opts.confirm_seconds)
            except DeviceError as exc:
                return self._result("failed", f"commit-confirm could not be armed, nothing changed: {exc}",
                                    error=str(exc), commands=p.commands, diff=diff)
        else:
            guard_note = " (no commit-confirm on this platform)"
        try:
            _send(self.conn, p.commands)
            after = running_config(self.conn, self.platform)
            if not _same(after, self.intended, self.platform):
                left = unified_diff(self.intended, after, self.platform, self.t.name)
                raise DeviceError("verify failed: running config differs from intended after apply:\n" + left)
            if self.guard is not None:
                # Prove the management path with a NEW session after routes settle: an established session can
                # outlive a change that blocks every new one. Only then save and confirm.
                self.close()
                time.sleep(self.opts.settle_seconds)
                try:
                    self.conn = connect(self.inv, self.t, self.log, retries=0)
                except DeviceError:
                    raise DeviceError("management path lost after the change (a new SSH session fails)") from None
            self.conn.save_config()
            if self.guard is not None:
                self.guard.confirm()
        except Exception as exc:
            reason = str(exc) if isinstance(exc, DeviceError) else (
                f"SSH session lost during apply/verify ({type(exc).__name__})")
            return self._rollback(reason, p.commands, diff)
        return self._result("changed", f"{len(p.commands)} commands applied, verified, saved{guard_note}",
                            commands=p.commands, diff=diff, changed=True)

    def _rollback(self, reason: str, commands: list[str], diff: str) -> DeployResult:
        """Restore the backup ourselves if the session lives; else let the device-side watchdog do it."""
        assert self.backup is not None
        logger.warning("%s: deploy failed (%s); restoring the backup", self.t.name, reason.splitlines()[0])
        restored = False
        how = ""
        try:
            self._reconnect()
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
            deadline = time.monotonic() + self.opts.confirm_seconds + 30
            while time.monotonic() < deadline and not restored:
                time.sleep(3)
                try:
                    self._reconnect()
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
