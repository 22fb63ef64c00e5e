"""Netmiko sessions to devices: credentials resolved at connect time, one retry, a session log per device.

The session log is what proves "no config command was sent" for an unchanged device, so every deploy keeps it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conftool.errors import ConftoolError
from conftool.inventory import Device, Inventory, Site, resolve

logger = logging.getLogger(__name__)

# Lines a device prints when it refuses a config command (IOS, FRR vtysh, VRP, RouterOS).
ERROR_PATTERN = (r"(% ?Invalid input|% ?Unknown command|% ?Incomplete command|% ?Ambiguous command|"
                 r"% ?Command incomplete|% ?Malformed|% ?Configuration failed|% ?Error|% ?Can't|% ?Cannot|"
                 r"Error: Unrecognized command|expected end of command|bad command name|syntax error)")


class DeviceError(ConftoolError):
    """A device could not be reached or refused what we sent; carries the host name, never a secret."""

    exit_code = 1


class Unreachable(DeviceError):
    """Connecting failed twice (the first failure is retried once)."""


@dataclass
class Target:
    site: Site
    device: Device

    @property
    def name(self) -> str:
        return self.device.hostname


def preload() -> None:
    """Import Netmiko (and paramiko's crypto, ~0.2-0.5 s) in the background while the inventory loads and the
    configs render: the first connection then does not wait for it."""
    import importlib
    import threading

    threading.Thread(target=importlib.import_module, args=("netmiko",), name="preload-netmiko", daemon=True).start()


def netmiko_params(inv: Inventory, target: Target, session_log: Path | None = None) -> dict[str, Any]:
    """ConnectHandler arguments; the secret is resolved here and only here."""
    dev = target.device
    if dev.mgmt_address is None:
        raise DeviceError(f"{dev.hostname}: no management address in the inventory")
    params: dict[str, Any] = {
        "device_type": dev.device_type,
        "host": str(dev.mgmt_address),
        "port": dev.port,
        "username": dev.username or "",
        "conn_timeout": min(dev.timeout_s, 15.0),
        "auth_timeout": dev.timeout_s,
        "banner_timeout": dev.timeout_s,
        "timeout": dev.timeout_s,
        "read_timeout_override": None,
        "allow_agent": False,
        "ssh_config_file": None,
        "fast_cli": True,
    }
    if dev.credentials:
        secret = resolve(dev.credentials, base_dir=inv.base_dir)
        if secret.kind == "keyfile":
            params.update(use_keys=True, key_file=secret.reveal(), password="")
        else:
            params.update(use_keys=False, password=secret.reveal(), secret=secret.reveal())
    if dev.enable_credentials:
        params["secret"] = resolve(dev.enable_credentials, base_dir=inv.base_dir).reveal()
    if session_log is not None:
        session_log.parent.mkdir(parents=True, exist_ok=True)
        params["session_log"] = str(session_log)
        params["session_log_file_mode"] = "append"
    return {k: v for k, v in params.items() if v is not None}


def connect(inv: Inventory, target: Target, session_log: Path | None = None, retries: int = 1) -> Any:
    """An open Netmiko connection; a failed connect is retried once before the device counts as unreachable."""
    from netmiko import ConnectHandler
    from netmiko.exceptions import NetmikoAuthenticationException, NetmikoTimeoutException

    params = netmiko_params(inv, target, session_log)
    last: Exception | None = None
    for attempt in range(retries + 1):
        try:
            conn = ConnectHandler(**params)
        except (NetmikoTimeoutException, NetmikoAuthenticationException, OSError, EOFError) as exc:
            last = exc
            logger.info("%s: connect attempt %d failed: %s", target.name, attempt + 1, type(exc).__name__)
            if attempt < retries:
                time.sleep(1.0)
            continue
        try:
            if not conn.check_enable_mode():
                conn.enable()  # IOS users below privilege 15 land in user EXEC
        except Exception as exc:
            conn.disconnect()
            raise DeviceError(f"{target.name}: cannot enter privileged mode ({type(exc).__name__})") from None
        return conn
    reason = type(last).__name__ if last else "unknown"
    if last is not None and "Authentication" in reason:
        raise Unreachable(f"{target.name} ({params['host']}): authentication failed — check the credentials "
                          f"reference {target.device.credentials}")
    raise Unreachable(f"{target.name} ({params['host']}:{params['port']}): cannot connect ({reason})")


def running_config(conn: Any, platform: str) -> str:
    cmd = {"mikrotik_routeros": "/export", "huawei_vrp": "display current-configuration"}.get(
        platform, "show running-config")
    out = conn.send_command(cmd, read_timeout=60)
    return str(out)
