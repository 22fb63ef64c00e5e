#!/usr/bin/env bash
# The main job on the embedded default: the Điện Biên reference inventory (later: lab, deploy, audit, meeting).
set -euo pipefail
cd "$(dirname "$0")/.."
# Always install first: a package installed by hand must not hide a missing install line.
bash scripts/install.sh
export PATH="$PWD/.venv/bin:$PATH"
conftool inventory validate
conftool inventory show --era legacy | head -20
