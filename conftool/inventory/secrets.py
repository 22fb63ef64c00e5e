"""Credential references (DESIGN §9): the inventory names where a secret lives, never the secret itself.

Resolution happens only when a device is contacted; a resolved ``Secret`` never prints its value, so it
cannot leak into logs, reports or exception messages by accident.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator

from conftool.errors import SecretError

logger = logging.getLogger(__name__)

_REF = re.compile(r"^(env:[A-Za-z_][A-Za-z0-9_]*|vault:[^#\s]+#[A-Za-z0-9_.\-/]+|keyfile:\S+)$")
SECRET_KEYS = frozenset({"password", "passwd", "secret", "enable_secret", "token", "key", "private_key", "pass"})

ADVICE = (
    "put a reference instead of the value: env:VAR (environment variable), "
    "vault:FILE#key (ansible-vault encrypted file) or keyfile:PATH (SSH private key)"
)


def check_ref(value: str) -> str:
    """Accept only a well-formed reference; the error never repeats the offending value."""
    if not isinstance(value, str) or not _REF.match(value):
        raise ValueError(f"credentials must be a reference, not a literal secret: {ADVICE}")
    return value


CredentialRef = Annotated[str, AfterValidator(check_ref)]


def is_reference(value: object) -> bool:
    return isinstance(value, str) and bool(_REF.match(value))


@dataclass(frozen=True)
class Secret:
    """A resolved credential. ``repr``/``str`` show only the reference, never the value."""

    ref: str
    kind: Literal["password", "keyfile"]
    _value: str = field(repr=False)

    def reveal(self) -> str:
        """The password, or the key file's path for ``keyfile:`` references."""
        return self._value

    def __str__(self) -> str:
        return f"<secret {self.ref}>"

    def __repr__(self) -> str:
        return f"Secret({self.ref!r})"


def default_state_dir() -> Path:
    """LIENTHONG_STATE, else ~/.local/state/lienthong (DESIGN §9)."""
    env = os.environ.get("LIENTHONG_STATE")
    return Path(env).expanduser() if env else Path.home() / ".local" / "state" / "lienthong"


def _vault_password() -> str:
    pw_file = os.environ.get("LIENTHONG_VAULT_PASSWORD_FILE")
    if pw_file:
        try:
            return Path(pw_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SecretError(
                f"cannot read the vault password file named by LIENTHONG_VAULT_PASSWORD_FILE ({pw_file}): "
                f"{exc.strerror}"
            ) from None
    pw = os.environ.get("LIENTHONG_VAULT_PASSWORD")
    if pw:
        return pw
    raise SecretError(
        "a vault: reference needs the vault password: set LIENTHONG_VAULT_PASSWORD_FILE "
        "(a file holding it) or LIENTHONG_VAULT_PASSWORD"
    )


def read_vault(path: Path) -> dict[str, object]:
    """Decrypt an ansible-vault file holding a YAML mapping (ansible-core's own vault code, no home-made cipher)."""
    import yaml
    from ansible.parsing.vault import AnsibleVaultError, VaultLib, VaultSecret

    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise SecretError(f"vault file {path} cannot be read: {exc.strerror}") from None
    vault = VaultLib([("default", VaultSecret(_vault_password().encode()))])
    try:
        plain = vault.decrypt(blob)
    except AnsibleVaultError:
        raise SecretError(
            f"vault file {path} could not be decrypted: wrong vault password or not an ansible-vault file"
        ) from None
    data = yaml.safe_load(plain)
    if not isinstance(data, dict):
        raise SecretError(f"vault file {path} must hold a YAML mapping of key: value")
    return data


def write_vault(path: Path, data: dict[str, object], password: str) -> None:
    """Encrypt a mapping into an ansible-vault file (used by tests and by `play` for temporary vars)."""
    import yaml
    from ansible.parsing.vault import VaultLib, VaultSecret

    vault = VaultLib([("default", VaultSecret(password.encode()))])
    path.write_bytes(vault.encrypt(yaml.safe_dump(data, allow_unicode=True)))
    path.chmod(0o600)


def resolve(ref: str, *, base_dir: Path | None = None, state_dir: Path | None = None) -> Secret:
    """Turn a reference into a Secret at the moment a device is contacted.

    ``base_dir`` anchors relative ``vault:`` files (the inventory directory); ``state_dir`` anchors relative
    ``keyfile:`` paths (keys the lab generates live there).
    """
    check_ref_or_raise(ref)
    scheme, _, rest = ref.partition(":")
    if scheme == "env":
        value = os.environ.get(rest)
        if value is None:
            raise SecretError(f"credential reference {ref}: environment variable {rest} is not set")
        return Secret(ref, "password", value)
    if scheme == "keyfile":
        p = Path(rest).expanduser()
        if not p.is_absolute():
            p = (state_dir or default_state_dir()) / p
        if not p.is_file():
            raise SecretError(
                f"credential reference {ref}: key file {p} does not exist "
                "(for the lab's keys run `conftool lab up` first)"
            )
        return Secret(ref, "keyfile", str(p))
    file_part, _, key = rest.partition("#")
    vf = Path(file_part).expanduser()
    if not vf.is_absolute():
        vf = (base_dir or Path.cwd()) / vf
    data = read_vault(vf)
    if key not in data:
        raise SecretError(f"credential reference {ref}: key {key!r} not found in vault file {vf}")
    return Secret(ref, "password", str(data[key]))


def check_ref_or_raise(ref: str) -> None:
    if not is_reference(ref):
        raise SecretError(f"not a credential reference: {ADVICE}")
