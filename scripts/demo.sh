#!/usr/bin/env bash
# The main job on the embedded default: the Điện Biên reference inventory (later: lab, deploy, audit, meeting).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
conftool inventory validate
conftool inventory show --era legacy | head -20
