"""Harness: an emulated Cisco IOS CLI (the `fake-switches` package) on 127.0.0.1 for the cisco_ios deploy engine.

fake-switches targets old Twisted; on Python 3.11 it runs next to a current twisted[conch] when installed with
`--no-deps`. Its quirks are handled here, in the test harness, never in the product:
- its enable check compares bytes with str, so the enable password is empty (plain `enable` works);
- it has no `end` in config mode (added below) and answers unknown commands with its own words (made IOS-like);
- L3 addresses only on `interface VlanN`, no `show ip interface brief`: the tests use a template subset.
- it has no archive feature; the harness adds the part deploy drives — Configuration Rollback Confirmed
  Change: `configure terminal revert timer M` (archives the running state, arms the timer, enters config mode),
  `configure confirm` (stops the timer), `show archive config rollback timer` (IOS's wording), and the revert
  itself when the timer fires. This behaviour is OURS, modelled on Cisco's documentation, not IOS's code: the
  tests show deploy drives the commands in the right order and acts on the answers, not that real IOS agrees.
  Env knobs: FAKE_IOS_ARCHIVE=0 answers the archive commands like an IOS without the feature;
  FAKE_IOS_MINUTE_S=N makes one "minute" of the revert timer last N seconds (tests cannot wait minutes).
Run as a script: `python fake_ios.py PORT USER PASSWORD HOSTNAME`.
"""

from __future__ import annotations

import copy
import os
import sys
import time
from typing import Any

# The parts of the emulator's state a configure replace brings back.
STATE_ATTRS = ("name", "vlans", "ports", "static_routes", "vrfs")


def main() -> None:
    port, user, password, hostname = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    from fake_switches.cisco.cisco_core import CiscoShellSession, CiscoSwitchCore
    from fake_switches.cisco.command_processor.config import ConfigCommandProcessor
    from fake_switches.switch_configuration import Port, SwitchConfiguration
    from fake_switches.transports.ssh_service import SwitchSshService
    from twisted.internet import reactor

    # Harness workaround: real IOS leaves config mode with `end` from any depth; the emulator lacks it.
    # An interface sub-mode falls back to its parent for unknown commands, so one method covers both levels.
    def do_end(self: ConfigCommandProcessor) -> None:
        self.is_done = True

    ConfigCommandProcessor.do_end = do_end  # type: ignore[attr-defined]

    # Harness workaround: answer unknown commands the way IOS does, so deploy's error detection is exercised.
    def unknown(self: CiscoShellSession, line: str) -> None:
        self.command_processor.terminal_controller.write(
            f"{line}\n        ^\n% Invalid input detected at '^' marker.\n\n")

    CiscoShellSession.handle_unknown_command = unknown  # type: ignore[method-assign]
    conf = SwitchConfiguration("127.0.0.1", name=hostname, privileged_passwords=[""],
                               ports=[Port("FastEthernet0/1"), Port("FastEthernet0/2"), Port("FastEthernet0/3")])
    if os.environ.get("FAKE_IOS_ARCHIVE", "1") == "1":
        add_rollback_timer(conf, float(os.environ.get("FAKE_IOS_MINUTE_S", "60")))
    core = CiscoSwitchCore(conf)
    SwitchSshService(ip="127.0.0.1", port=port, switch_core=core,
                     users={user: password.encode()}).hook_to_reactor(reactor)
    print("ready", flush=True)
    reactor.run()  # type: ignore[attr-defined]


def add_rollback_timer(conf: Any, minute_s: float) -> None:
    """Configuration Rollback Confirmed Change on the emulator (see the module docstring)."""
    from fake_switches.cisco.command_processor.enabled import EnabledCommandProcessor
    from twisted.internet import reactor as _reactor

    reactor: Any = _reactor

    pending: dict[str, Any] = {}  # "call" (the reactor timer), "archive" (the state), "armed_at", "minutes"

    def snapshot() -> dict[str, Any]:
        return copy.deepcopy({a: getattr(conf, a) for a in STATE_ATTRS}, {id(conf): conf})

    def revert() -> None:
        for a, v in copy.deepcopy(pending["archive"], {id(conf): conf}).items():
            setattr(conf, a, v)
        pending.clear()
        print("rollback timer expired: archive restored", flush=True)

    original_configure = EnabledCommandProcessor.do_configure
    original_show = EnabledCommandProcessor.do_show

    def do_configure(self: Any, *args: str) -> None:
        words = [a.lower() for a in args]
        if words[:1] and "confirm".startswith(words[0]) and len(words[0]) >= 4:
            if pending:
                pending["call"].cancel()
                pending.clear()
            return
        if len(words) == 4 and words[1:3] == ["revert", "timer"] and words[3].isdigit():
            if pending:
                self.write_line("% Rollback Confirmed Change already pending")
                return
            minutes = int(words[3])
            self.write_line("Rollback Confirmed Change: Backing up current running config to flash:lt-archive-1")
            pending.update(archive=snapshot(), minutes=minutes, armed_at=time.time(),
                           call=reactor.callLater(minutes * minute_s, revert))
        original_configure(self, *args)

    def do_show(self: Any, *args: str) -> None:
        words = [a.lower() for a in args]
        if words[:1] and "archive".startswith(words[0]) and len(words[0]) >= 3:
            if words[1:4] != ["config", "rollback", "timer"]:
                self.write_line("% Incomplete command.")
            elif not pending:
                self.write_line("%No Rollback Confirmed Change pending")
            else:
                armed = time.strftime("%H:%M:%S UTC %a %b %d %Y", time.gmtime(pending["armed_at"]))
                self.write_line(f"Time configured: {armed}")
                self.write_line("Timer type: Rollback timer")
                self.write_line(f"Timer value: {pending['minutes']} min")
            return
        original_show(self, *args)

    EnabledCommandProcessor.do_configure = do_configure
    EnabledCommandProcessor.do_show = do_show


if __name__ == "__main__":
    main()
