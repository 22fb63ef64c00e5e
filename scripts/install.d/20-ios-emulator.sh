#!/usr/bin/env bash
# The emulated Cisco IOS CLI used by the cisco_ios deploy-engine tests (tests/devices/fake_ios.py).
# fake-switches pins an old Twisted that does not build on Python 3.11, so it goes in with --no-deps;
# its real dependencies (twisted[conch], tftpy, netaddr, lxml) come from pyproject's `test` extra.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=.venv/bin/python
if $PY -c "import fake_switches" 2>/dev/null; then
  echo "20-ios-emulator: fake-switches present"
  exit 0
fi
$PY -m pip install -q --no-deps "fake-switches==1.5.0"
$PY -c "import fake_switches.cisco.cisco_core, fake_switches.transports.ssh_service"
echo "20-ios-emulator: fake-switches installed"
