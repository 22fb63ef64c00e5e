"""Harness: an emulated Cisco IOS CLI (the `fake-switches` package) on 127.0.0.1 for the cisco_ios deploy engine.

fake-switches targets old Twisted; on Python 3.11 it runs next to a current twisted[conch] when installed with
`--no-deps`. Its quirks are handled here, in the test harness, never in the product:
- its enable check compares bytes with str, so the enable password is empty (plain `enable` works);
- it has no `end` in config mode (added below) and answers unknown commands with its own words (made IOS-like);
- L3 addresses only on `interface VlanN`, no `show ip interface brief`: the tests use a template subset.
Run as a script: `python fake_ios.py PORT USER PASSWORD HOSTNAME`.
"""

from __future__ import annotations

import sys


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
    core = CiscoSwitchCore(conf)
    SwitchSshService(ip="127.0.0.1", port=port, switch_core=core,
                     users={user: password.encode()}).hook_to_reactor(reactor)
    print("ready", flush=True)
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
