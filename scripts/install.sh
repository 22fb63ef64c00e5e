#!/usr/bin/env bash
# Install everything the suite needs on a Debian 12 machine (run as root):
# Debian packages (daemons kept from starting in the root namespace), then the
# project and its test tools into .venv. Safe to re-run; fast when nothing is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

if [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: run as root (the lab needs network namespaces; apt-get needs root)" >&2
  exit 2
fi

mapfile -t PKGS < <(grep -vE '^\s*(#|$)' scripts/apt-packages.txt)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install.sh: apt-get install ${missing[*]}"
  # Keep package maintainer scripts from starting daemons (frr, sshd, postgresql)
  # in the root namespace: the lab and the tests start their own instances.
  created_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    created_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
  if [ "$created_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
fi

PY=/usr/bin/python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[test]"

# Optional extra steps of later features (wheelhouse, browsers ...) live in
# scripts/install.d/*.sh and run in name order.
if [ -d scripts/install.d ]; then
  for f in scripts/install.d/*.sh; do
    [ -e "$f" ] || continue
    echo "install.sh: $f"
    bash "$f"
  done
fi
echo "install.sh: ready (.venv)"
