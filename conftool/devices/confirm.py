"""Commit-confirm: a change that cuts the management path must not brick a device.

Before applying, deploy arms a device-side timer; unless deploy confirms within N seconds (which it can only do
if it still reaches the device after the change), the device restores the configuration it had before.

* FRR (the lab's routers): vtysh has no such timer, so the lab's routers carry a small device-side watchdog,
  reached over the same SSH login as ``lt-confirm arm N`` / ``lt-confirm confirm`` (an exec request; interactive
  logins still land in vtysh). It snapshots the running config when armed and restores it with FRR's own
  ``frr-reload.py`` when the timer fires.
* Cisco IOS has ``configure terminal revert timer N`` / ``configure confirm`` (the archive feature), but it is
  NOT driven yet: the IOS emulator the tests use has no archive/revert, so it could not be tested honestly.
* Platforms without a guard we drive (cisco_ios, huawei_vrp, mikrotik_routeros today) deploy without one, and
  deploy says so in the device's result.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

from conftool.devices.session import DeviceError

logger = logging.getLogger(__name__)


class Guard(Protocol):
    name: str

    def arm(self, seconds: int) -> None: ...

    def confirm(self) -> None: ...

    def state(self) -> str: ...


@dataclass
class FrrWatchdog:
    """Device-side watchdog of the lab's FRR routers, driven through SSH exec requests."""

    params: dict[str, Any]
    name: str = "frr-watchdog"

    def _exec(self, command: str, timeout: float = 20.0) -> str:
        import paramiko

        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        try:
            client.connect(self.params["host"], port=int(self.params.get("port", 22)),
                           username=self.params.get("username"), key_filename=self.params.get("key_file"),
                           password=self.params.get("password") or None, allow_agent=False, look_for_keys=False,
                           timeout=timeout, banner_timeout=timeout, auth_timeout=timeout)
            _stdin, stdout, stderr = client.exec_command(command, timeout=timeout)
            out = stdout.read().decode(errors="replace") + stderr.read().decode(errors="replace")
            return str(out).strip()
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise DeviceError(f"{self.params['host']}: commit-confirm {command.split()[1]} failed: "
                              f"{type(exc).__name__}") from None
        finally:
            client.close()

    def arm(self, seconds: int) -> None:
        out = self._exec(f"lt-confirm arm {int(seconds)}")
        if "armed" not in out:
            raise DeviceError(f"{self.params['host']}: device has no commit-confirm watchdog ({out[:80]!r})")

    def confirm(self) -> None:
        out = self._exec("lt-confirm confirm")
        if "confirmed" not in out:
            raise DeviceError(f"{self.params['host']}: confirm not accepted ({out[:80]!r})")

    def state(self) -> str:
        return self._exec("lt-confirm status")


def guard_for(platform: str, params: dict[str, Any]) -> Guard | None:
    """The commit-confirm mechanism for a platform, or None where the platform has none we drive."""
    if platform == "frr":
        return FrrWatchdog(params)
    return None
