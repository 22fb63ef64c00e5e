"""Shared helpers of the play tests: a lab key pair in the state dir, a vault file of site tokens."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftool.inventory.secrets import write_vault

VAULT_PASSWORD = "test-vault-password-7d1c"


@pytest.fixture
def lab_key(state_dir: Path) -> Path:
    """What `lab up` would have generated: keyfile:lab/keys/netops_ed25519 resolves to it."""
    keys = state_dir / "lab" / "keys"
    keys.mkdir(parents=True)
    key = keys / "netops_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "lt-test", "-f", str(key)], check=True)
    return key


def token_vault(path: Path, sites: list[str], password: str = VAULT_PASSWORD) -> dict[str, str]:
    """An ansible-vault file with one site token per site id; returns the clear tokens (for assertions)."""
    tokens = {s: f"lts_{s}_Zq8xTestToken" for s in sites}  # the agent accepts only lts_… tokens
    write_vault(path, dict(tokens), password)
    return tokens
