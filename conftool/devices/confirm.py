"""Commit-confirm: a change that cuts the management path must not brick a device.

Before applying, deploy arms a device-side timer; unless deploy confirms within N seconds (which it can only do
if it still reaches the device after the change), the device restores the configuration it had before.

* FRR (the lab's routers): vtysh has no such timer, so the lab's routers carry a small device-side watchdog,
  driven by SSH exec requests ``lt-confirm arm N -`` / ``lt-confirm confirm`` / ``lt-confirm status``
  (interactive logins still land in vtysh). Armed, it keeps the running config the deploy has just read (and
  backed up) as its restore point — sent on the request's stdin — and restores it with FRR's own
  ``frr-reload.py`` when the timer fires; it confirms only a change that is still pending.
  Arming and the status checks run as extra channels of the deploy's own SSH connection (one login, no new
  handshake). The **confirm** runs over a **new** SSH connection (TCP handshake, key exchange, public-key
  login, then the exec request): it is the proof that the management path still lets a new session in after
  the change. An established session can outlive a change that blocks every new one (a route or filter that
  only hits new flows), so the old connection proves nothing; a bare TCP connect would not prove that sshd
  and the login still work. If that new login fails, nothing confirms, and the device restores itself.
* Cisco IOS: the archive feature's Configuration Rollback Confirmed Change. Arming enters config mode with
  ``configure terminal revert timer M`` (M minutes, the window rounded up; IOS archives the running config
  then) and leaves it again; the change itself is sent in the ordinary config mode that follows. The confirm is
  ``configure confirm`` over a NEW SSH login, after checking with ``show archive config rollback timer`` that
  the timer still waits; unconfirmed, IOS rolls back to the archive when M minutes are over. It needs
  ``archive`` with a ``path`` on the device: where the device answers that it has no such feature, deploy
  goes on without a guard and says so (:class:`GuardUnavailable`). Tested against an emulated IOS whose
  archive/revert behaviour is written in the test harness (tests/devices/fake_ios.py), not against real IOS.
* Platforms without a guard we drive (huawei_vrp, mikrotik_routeros today) deploy without one, and deploy
  says so in the device's result.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from typing import Any, Protocol

from conftool.devices.session import DeviceError

logger = logging.getLogger(__name__)


class GuardUnavailable(DeviceError):
    """The platform has a commit-confirm mechanism, but this device cannot use it; nothing was changed."""


class Guard(Protocol):
    name: str
    session: Any  # the deploy's open connection, reused for arm/status; replaced after a reconnect

    @property
    def window_s(self) -> float: ...  # how long after arming the device restores by itself

    def arm(self, seconds: int, restore_point: str) -> None: ...  # restore_point: the running config just read

    def confirm_over_new_session(self) -> None: ...

    def confirm(self) -> None: ...

    def state(self) -> str: ...


def _read_exec(transport: Any, command: str, timeout: float, stdin: str | None = None) -> str:
    chan = transport.open_session(timeout=timeout)
    try:
        chan.settimeout(timeout)
        chan.exec_command(command)
        if stdin is not None:
            chan.sendall(stdin.encode())
            chan.shutdown_write()  # EOF: the device side reads until here
        out = b""
        while True:
            data = chan.recv(4096)
            if not data:
                break
            out += data
        while chan.recv_stderr_ready():
            out += chan.recv_stderr(4096)
        return out.decode(errors="replace").strip()
    finally:
        chan.close()


@dataclass
class FrrWatchdog:
    """Device-side watchdog of the lab's FRR routers, driven through SSH exec requests.

    ``session`` is the deploy's open Netmiko connection: its SSH transport carries the arm and status requests
    as extra channels. Without one (or once it is gone) each request makes its own short login.
    """

    params: dict[str, Any]
    session: Any = None
    name: str = "frr-watchdog"
    seconds: int = 0

    @property
    def window_s(self) -> float:
        return float(self.seconds)

    def _transport(self) -> Any:
        try:
            t = self.session.remote_conn.get_transport() if self.session is not None else None
        except Exception:
            return None
        return t if t is not None and t.is_active() else None

    def _login(self, timeout: float) -> Any:
        """A new SSH connection with the deploy's credentials: TCP + key exchange + login, nothing else."""
        import paramiko

        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        client.connect(self.params["host"], port=int(self.params.get("port", 22)),
                       username=self.params.get("username"), key_filename=self.params.get("key_file"),
                       password=self.params.get("password") or None, allow_agent=False, look_for_keys=False,
                       timeout=timeout, banner_timeout=timeout, auth_timeout=timeout)
        return client

    def _exec(self, command: str, timeout: float = 20.0, new_session: bool = False, stdin: str | None = None) -> str:
        import paramiko

        client = None
        try:
            transport = None if new_session else self._transport()
            if transport is None:
                client = self._login(timeout)
                transport = client.get_transport()
            return _read_exec(transport, command, timeout, stdin)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise DeviceError(f"{self.params['host']}: commit-confirm {command.split()[1]} failed: "
                              f"{type(exc).__name__}") from None
        finally:
            if client is not None:
                client.close()

    def arm(self, seconds: int, restore_point: str) -> None:
        """Start the timer. ``restore_point`` is the running config the deploy has just read on this connection
        (its backup): the watchdog keeps it as what to restore, so the router need not start a vtysh to read it
        again."""
        self.seconds = int(seconds)
        out = self._exec(f"lt-confirm arm {int(seconds)} -", stdin=restore_point)
        if "armed" not in out:
            raise DeviceError(f"{self.params['host']}: device has no commit-confirm watchdog ({out[:80]!r})")

    def confirm_over_new_session(self) -> None:
        """Confirm over one NEW login (the management-path proof). The watchdog confirms only a change still
        pending and otherwise answers ``not pending: …`` — check and confirm are one request."""
        import paramiko

        timeout = float(self.params.get("conn_timeout", 10.0))
        try:
            client = self._login(timeout)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise DeviceError(f"management path lost after the change (a new SSH session fails: "
                              f"{type(exc).__name__})") from None
        try:
            out = _read_exec(client.get_transport(), "lt-confirm confirm", timeout)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise DeviceError(f"management path lost after the change (new SSH session broke: "
                              f"{type(exc).__name__})") from None
        finally:
            client.close()
        if out.startswith("not pending"):  # the timer already fired: the device runs its backup, not our change
            raise DeviceError(f"commit-confirm window over before the confirm (watchdog: {out[:60]!r})")
        if "confirmed" not in out:
            raise DeviceError(f"{self.params['host']}: confirm not accepted ({out[:80]!r})")

    def confirm(self) -> None:
        out = self._exec("lt-confirm confirm")
        if "confirmed" not in out:
            raise DeviceError(f"{self.params['host']}: confirm not accepted ({out[:80]!r})")

    def state(self) -> str:
        return self._exec("lt-confirm status")


_IOS_PENDING = re.compile(r"Timer (type|value)", re.I)
_IOS_IDLE = re.compile(r"No Rollback Confirmed Change pending", re.I)
_IOS_ERROR = re.compile(r"^\s*%|Invalid input|Incomplete command|not (enabled|configured)", re.I | re.M)
IOS_TIMER_SHOW = "show archive config rollback timer"


@dataclass
class IosRevertTimer:
    """Cisco IOS Configuration Rollback Confirmed Change (``configure terminal revert timer`` / ``configure
    confirm``), driven through the deploy's Netmiko session; the confirm goes over a new login."""

    params: dict[str, Any]
    session: Any = None
    name: str = "ios-revert-timer"
    minutes: int = 0

    @property
    def window_s(self) -> float:
        return 60.0 * self.minutes

    def _timer(self, conn: Any) -> str:
        out = str(conn.send_command(IOS_TIMER_SHOW, read_timeout=20))
        if _IOS_PENDING.search(out):
            return "pending"
        if _IOS_IDLE.search(out):
            return "idle"
        return "unsupported: " + (out.strip().splitlines() or ["no answer"])[-1][:80]

    def arm(self, seconds: int, restore_point: str) -> None:
        """IOS archives its running config itself when the timer is armed: ``restore_point`` is not sent."""
        state = self._timer(self.session)
        if state.startswith("unsupported"):
            raise GuardUnavailable(f"no rollback timer on the device (archive not configured?): {state[13:]}")
        if state == "pending":
            raise DeviceError(f"{self.params['host']}: another rollback-confirmed change is pending on the device")
        self.minutes = max(1, math.ceil(seconds / 60))  # IOS counts the window in whole minutes
        out = str(self.session.config_mode(config_command=f"configure terminal revert timer {self.minutes}"))
        self.session.exit_config_mode()
        if _IOS_ERROR.search(out) or self._timer(self.session) != "pending":
            raise GuardUnavailable(f"the device did not arm its revert timer: {out.strip()[-80:]!r}")

    def confirm_over_new_session(self) -> None:
        """A NEW login (the management-path proof) checks the timer still waits, then confirms."""
        from netmiko import ConnectHandler

        try:
            conn = ConnectHandler(**{k: v for k, v in self.params.items() if k != "session_log"})
        except Exception as exc:
            raise DeviceError(f"management path lost after the change (a new SSH session fails: "
                              f"{type(exc).__name__})") from None
        try:
            if not conn.check_enable_mode():
                conn.enable()
            if self._timer(conn) != "pending":  # the timer fired: the device runs its archive, not our change
                raise DeviceError("commit-confirm window over before the confirm (IOS revert timer not pending)")
            conn.send_command("configure confirm", read_timeout=20)
            if self._timer(conn) == "pending":
                raise DeviceError(f"{self.params['host']}: `configure confirm` did not stop the revert timer")
        finally:
            conn.disconnect()

    def confirm(self) -> None:
        self.session.send_command("configure confirm", read_timeout=20)

    def state(self) -> str:
        return self._timer(self.session)


def guard_for(platform: str, params: dict[str, Any], session: Any = None) -> Guard | None:
    """The commit-confirm mechanism for a platform, or None where the platform has none we drive."""
    if platform == "frr":
        return FrrWatchdog(params, session)
    if platform == "cisco_ios":
        return IosRevertTimer(params, session)
    return None
