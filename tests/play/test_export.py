"""The exported run inventory: Ansible reads it (real ansible-inventory), secrets only inside vault files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftool.inventory import load
from conftool.play import PlayError, find_playbook, linux_hosts, parse_secret_refs, playbooks_dir
from conftool.play.export import export
from conftool.play.vaultpass import VaultPasswordServer
from tests.play.conftest import VAULT_PASSWORD, token_vault

ANSIBLE_INVENTORY = str(Path(sys.executable).parent / "ansible-inventory")


def _all_text(d: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in d.rglob("*") if p.is_file() and p.suffix != ".sock")


@pytest.mark.parametrize("lab", [False, True])
def test_export_is_a_normal_inventory_with_vaulted_secrets(reference_inventory: Path, state_dir: Path,
                                                           lab_key: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch, lab: bool) -> None:
    inv = load(reference_inventory).select(["03124", "03127", "11"])
    hosts = linux_hosts(inv)
    assert [d.hostname for _, d in hosts] == ["srv-dien-bien", "pc-noong-bua", "pc-him-lam"]
    tokens = token_vault(tmp_path / "tokens.vault", ["03124", "03127", "11"])
    monkeypatch.setenv("LIENTHONG_VAULT_PASSWORD", VAULT_PASSWORD)
    monkeypatch.setenv("LT_TEST_ADMIN_NOTE", "env-secret-9f2")
    refs = parse_secret_refs([f"meeting_token=vault:{tmp_path}/tokens.vault#{{site}}", "note=env:LT_TEST_ADMIN_NOTE"])
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    with VaultPasswordServer(run) as vps:
        ex = export(inv, hosts, run / "inventory", vault_password=vps.password, state_dir=state_dir,
                    lab_vars=playbooks_dir() / "lab-vars.yml" if lab else None, suite_vars={"lt_wheelhouse": "/w"},
                    secret_refs=refs)
        assert ex.hosts == {"srv-dien-bien": "11", "pc-noong-bua": "03124", "pc-him-lam": "03127"}
        assert ex.env_secrets == {"LT_TEST_ADMIN_NOTE"}
        # No secret in clear anywhere in the run directory; the vault files are ansible-vault.
        text = _all_text(run)
        for secret in [*tokens.values(), "env-secret-9f2", vps.password, VAULT_PASSWORD]:
            assert secret not in text
        secrets_file = run / "inventory" / "host_vars" / "pc-noong-bua" / "90-secrets.yml"
        assert secrets_file.read_text().startswith("$ANSIBLE_VAULT;1.1;AES256")
        assert oct(secrets_file.stat().st_mode & 0o777) == "0o600"
        # The real ansible-inventory reads it, decrypting with the password the socket serves.
        cp = subprocess.run([ANSIBLE_INVENTORY, "-i", str(run / "inventory"), "--list",
                             "--vault-password-file", str(vps.client)], capture_output=True, text=True, timeout=120)
    assert cp.returncode == 0, cp.stderr
    doc = json.loads(cp.stdout)
    hv = doc["_meta"]["hostvars"]["pc-noong-bua"]
    assert hv["meeting_token"] == tokens["03124"] and hv["note"] == "env-secret-9f2"
    assert hv["ansible_host"] == "10.250.0.39" and hv["lt_site_id"] == "03124"
    assert hv["ansible_ssh_private_key_file"] == str(lab_key)
    assert hv["lt_admin_pubkeys"] == [Path(str(lab_key) + ".pub").read_text().strip()]
    assert hv["lt_admin_user"] == "netops" and "lt_credentials_ref" not in hv
    assert hv["lt_ntp_servers"] == ["10.11.0.11"] and hv["lt_soc_syslog"] == "10.11.0.10"
    assert hv["ansible_user"] == ("root" if lab else "{{ lt_admin_user }}")
    assert hv.get("lt_lab", False) is lab
    assert set(doc["role_meeting_endpoint"]["hosts"]) == {"pc-noong-bua", "pc-him-lam"}
    assert doc["role_server"]["hosts"] == ["srv-dien-bien"]
    assert not any(k.startswith("platform_frr") for k in doc)  # routers are not exported to Ansible


def test_secret_ref_must_be_a_reference() -> None:
    with pytest.raises(PlayError, match="must be a reference"):
        parse_secret_refs(["meeting_token=plaintext-token"])
    with pytest.raises(PlayError, match="NAME=REFERENCE"):
        parse_secret_refs(["no-equals-sign"])
    assert parse_secret_refs(["t=vault:a.vault#{site}"]) == {"t": "vault:a.vault#{site}"}


def test_playbook_by_name_or_path(tmp_path: Path) -> None:
    assert find_playbook("baseline") == playbooks_dir() / "baseline.yml"
    assert find_playbook("meeting-endpoint.yml") == playbooks_dir() / "meeting-endpoint.yml"
    own = tmp_path / "mine.yml"
    own.write_text("- hosts: all\n  tasks: []\n")
    assert find_playbook(str(own)) == own
    for bad in ("nope", "lab-vars", str(tmp_path / "missing.yml")):
        with pytest.raises(PlayError, match="not found: use one of baseline, meeting-endpoint, soc-forwarding"):
            find_playbook(bad)


def test_missing_key_is_a_clear_error(reference_inventory: Path, state_dir: Path, tmp_path: Path) -> None:
    inv = load(reference_inventory).select("03124")
    with pytest.raises(Exception, match=r"key file .* does not exist") as ei:
        export(inv, linux_hosts(inv), tmp_path / "inv", vault_password="x", state_dir=state_dir, lab_vars=None,
               suite_vars={})
    assert getattr(ei.value, "exit_code", None) == 2


def test_password_login_is_vaulted_and_needs_sshpass(reference_inventory: Path, state_dir: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """An `env:` password credential goes into the vault file (never in clear) and marks the host as a
    password login; without sshpass on PATH the plain ssh connection is refused before any run, mitogen is not."""
    from conftool.play.runner import check_password_login

    inv = load(reference_inventory).select("03124")
    (site, dev), = linux_hosts(inv)
    pw_dev = dev.model_copy(update={"credentials": "env:LT_TEST_HOST_PW"})
    monkeypatch.setenv("LT_TEST_HOST_PW", "pw-clear-5e8a")
    ex = export(inv, [(site, pw_dev)], tmp_path / "inv", vault_password="vp-1", state_dir=state_dir, lab_vars=None,
                suite_vars={})
    assert ex.password_hosts == ["pc-noong-bua"] and ex.env_secrets == {"LT_TEST_HOST_PW"}
    assert "pw-clear-5e8a" not in _all_text(tmp_path / "inv")
    assert (tmp_path / "inv" / "host_vars" / "pc-noong-bua" / "90-secrets.yml").read_text().startswith("$ANSIBLE_VAULT")
    no_sshpass = tmp_path / "bin"
    no_sshpass.mkdir()
    monkeypatch.setenv("PATH", str(no_sshpass))
    with pytest.raises(PlayError, match=r"1 host\(s\) log in with a password \(pc-noong-bua\).*sshpass") as ei:
        check_password_login(ex.password_hosts, "linear")
    assert ei.value.exit_code == 2
    check_password_login(ex.password_hosts, "mitogen_linear")  # mitogen answers the password prompt itself
    check_password_login([], "linear")
    (no_sshpass / "sshpass").symlink_to("/usr/bin/sshpass")  # the project installs it (scripts/apt-packages.txt)
    check_password_login(ex.password_hosts, "linear")


def test_strategy_default_and_override(monkeypatch: pytest.MonkeyPatch, reference_inventory: Path,
                                       state_dir: Path) -> None:
    """Mitogen is the default (measured, docs/playbooks.md); LIENTHONG_PLAY_STRATEGY selects plain Ansible; an
    unknown strategy is bad input, refused before any export."""
    from conftool.play import PlayOptions, run_play

    monkeypatch.delenv("LIENTHONG_PLAY_STRATEGY", raising=False)
    assert PlayOptions().strategy == "mitogen_linear"
    monkeypatch.setenv("LIENTHONG_PLAY_STRATEGY", "linear")
    assert PlayOptions().strategy == "linear"
    monkeypatch.setenv("LIENTHONG_PLAY_STRATEGY", "turbo")
    inv = load(reference_inventory).select("03124")
    with pytest.raises(PlayError, match=r"strategy 'turbo'.*mitogen_linear, mitogen_free, linear, free"):
        run_play(inv, find_playbook("baseline"), linux_hosts(inv), PlayOptions(), state_dir=state_dir, lab=False)
    assert not (state_dir / "play").exists()
