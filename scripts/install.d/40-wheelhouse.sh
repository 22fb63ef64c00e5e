#!/usr/bin/env bash
# Build the local wheelhouse for lab hosts ($REPO/.wheelhouse): wheels of our own package and of every
# dependency, so a lab host (which reaches no package index) installs the room agent with
#   pip install --no-index --find-links /path/to/.wheelhouse lienthong
# Fast when already built: skipped while the stamp (hash of pyproject.toml and the package sources) matches.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
WH="$ROOT/.wheelhouse"
PIP="$ROOT/.venv/bin/python -m pip"

stamp=$( { cat pyproject.toml; find conftool meeting -type f -not -path '*/__pycache__/*' -print0 | sort -z \
          | xargs -0 sha256sum; } | sha256sum | cut -d' ' -f1)
if [ -f "$WH/.stamp" ] && [ "$(cat "$WH/.stamp")" = "$stamp" ] && ls "$WH"/lienthong-*.whl >/dev/null 2>&1; then
  echo "40-wheelhouse: up to date ($(ls "$WH"/*.whl | wc -l) wheels in $WH)"
  exit 0
fi
mkdir -p "$WH"
rm -f "$WH"/lienthong-*.whl
# Our package as a wheel (not editable) and its dependencies as wheels (pip's cache makes re-runs quick).
$PIP wheel --quiet --wheel-dir "$WH" --find-links "$WH" "$ROOT"
echo "$stamp" > "$WH/.stamp"
echo "40-wheelhouse: $(ls "$WH"/*.whl | wc -l) wheels in $WH"
