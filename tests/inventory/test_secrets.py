"""Credential references resolve only when asked, with ansible-core's real vault, and never print the value."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftool.errors import SecretError
from conftool.inventory import resolve
from conftool.inventory.secrets import check_ref, write_vault


def test_env_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LT_TEST_PW", "p@ss-env-123")
    s = resolve("env:LT_TEST_PW")
    assert s.reveal() == "p@ss-env-123"
    assert "p@ss-env-123" not in repr(s) and "p@ss-env-123" not in str(s) and "p@ss-env-123" not in f"{s!r} {s}"
    monkeypatch.delenv("LT_TEST_PW")
    with pytest.raises(SecretError, match="LT_TEST_PW is not set"):
        resolve("env:LT_TEST_PW")


def test_vault_reference_real_ansible_vault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vf = tmp_path / "secrets.yml"
    write_vault(vf, {"router_pw": "vault-value-42"}, "open-sesame")
    assert b"vault-value-42" not in vf.read_bytes() and vf.read_bytes().startswith(b"$ANSIBLE_VAULT;1.1;AES256")
    pwfile = tmp_path / "pw"
    pwfile.write_text("open-sesame\n")
    monkeypatch.setenv("LIENTHONG_VAULT_PASSWORD_FILE", str(pwfile))
    assert resolve("vault:secrets.yml#router_pw", base_dir=tmp_path).reveal() == "vault-value-42"
    with pytest.raises(SecretError, match="key 'nope' not found") as exc:
        resolve("vault:secrets.yml#nope", base_dir=tmp_path)
    assert "vault-value-42" not in str(exc.value)
    pwfile.write_text("wrong")
    with pytest.raises(SecretError, match="could not be decrypted"):
        resolve("vault:secrets.yml#router_pw", base_dir=tmp_path)
    monkeypatch.delenv("LIENTHONG_VAULT_PASSWORD_FILE")
    monkeypatch.delenv("LIENTHONG_VAULT_PASSWORD", raising=False)
    with pytest.raises(SecretError, match="LIENTHONG_VAULT_PASSWORD"):
        resolve("vault:secrets.yml#router_pw", base_dir=tmp_path)


def test_keyfile_reference_relative_to_state(state_dir: Path) -> None:
    with pytest.raises(SecretError, match="lab up"):
        resolve("keyfile:lab/keys/netops_ed25519")
    key = state_dir / "lab" / "keys" / "netops_ed25519"
    key.parent.mkdir(parents=True)
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    s = resolve("keyfile:lab/keys/netops_ed25519")
    assert s.kind == "keyfile" and s.reveal() == str(key)


@pytest.mark.parametrize("bad", ["hunter2", "env:", "vault:file", "keyfile:", "env:1BAD", "plain text"])
def test_literals_are_not_references(bad: str) -> None:
    with pytest.raises(ValueError) as exc:
        check_ref(bad)
    assert bad not in str(exc.value) or bad in ("env:", "keyfile:")
