#!/usr/bin/env bash
# Run the whole default test suite (lint, types, pytest). Slow full-province tests: RUN_SLOW=1.
set -uo pipefail
cd "$(dirname "$0")/.."
# Always install first: a package installed by hand must not hide a missing install line.
bash scripts/install.sh || exit 2
export PATH="$PWD/.venv/bin:$PATH"
rc=0
ruff check conftool meeting tests bench || rc=1
mypy || rc=1
markers=()
if [ "${RUN_SLOW:-0}" = 1 ]; then markers=(-m "slow or not slow"); fi
pytest --durations=15 "${markers[@]}" "$@"
prc=$?
# pytest exit 5 = no tests collected: a suite that runs nothing must not pass silently.
if [ $prc -ne 0 ]; then rc=$prc; fi
exit $rc
