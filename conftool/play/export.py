"""The inventory as an Ansible inventory directory for one run, with secrets resolved but never in clear.

Layout (a normal Ansible inventory an engineer recognises):
    inventory/hosts.yml                      groups from `conftool inventory export --format ansible`
    inventory/host_vars/<host>/10-inventory.yml   the device's vars (site id, addresses, key path)
    inventory/host_vars/<host>/90-secrets.yml     ansible-vault encrypted: passwords, site tokens …
    inventory/group_vars/all/00-inventory.yml     province services (NTP, SOC, meeting server)
    inventory/group_vars/all/10-suite.yml         connection defaults, wheelhouse path
    inventory/group_vars/all/50-lab.yml           playbooks/lab-vars.yml, only while a lab runs
Only Linux hosts (room PCs, servers) are exported: routers are configured by `conftool deploy`, not Ansible.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from conftool.inventory import Device, Inventory, Site, resolve
from conftool.inventory.export import to_ansible
from conftool.inventory.secrets import is_reference, write_vault
from conftool.play.errors import PlayError

logger = logging.getLogger(__name__)

SECRET_SUFFIX = "_ref"


@dataclass
class Exported:
    """What the runner needs to know about an exported inventory."""

    path: Path
    hosts: dict[str, str]  # hostname -> site id
    env_secrets: set[str] = field(default_factory=set)  # environment variables that hold resolved secrets
    password_hosts: list[str] = field(default_factory=list)  # hosts that log in with a password (need sshpass)


def linux_hosts(inv: Inventory) -> list[tuple[Site, Device]]:
    """The devices Ansible manages: Linux hosts with a management address."""
    return [(s, d) for s, d in inv.devices() if d.platform == "linux" and d.mgmt_address is not None]


def parse_secret_refs(items: list[str] | None) -> dict[str, str]:
    """`--secret-ref NAME=REF` options; REF may hold `{site}` / `{host}` placeholders."""
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, ref = item.partition("=")
        if not sep or not name.isidentifier():
            raise PlayError(f"--secret-ref {item!r}: expected NAME=REFERENCE, e.g. "
                            "meeting_token=vault:secrets/site-tokens.vault#{site}")
        probe = ref.replace("{site}", "03124").replace("{host}", "pc-x")
        if not is_reference(probe):
            raise PlayError(f"--secret-ref {name}: the value must be a reference (env:VAR, vault:FILE#key or "
                            "keyfile:PATH), never the secret itself")
        out[name] = ref
    return out


def _dump(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("---\n" + yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def export(inv: Inventory, hosts: list[tuple[Site, Device]], out: Path, *, vault_password: str, state_dir: Path,
           lab_vars: Path | None, suite_vars: dict[str, Any], secret_refs: dict[str, str] | None = None) -> Exported:
    """Write the inventory directory `out` for `hosts`; resolve every secret reference into vault files."""
    wanted = {d.hostname for _, d in hosts}
    full = to_ansible(inv)["all"]
    hostvars: dict[str, dict[str, Any]] = {}
    groups: dict[str, Any] = {}
    for gname, group in full["children"].items():
        members = {h: None for h in group["hosts"] if h in wanted}
        for h, hv in group["hosts"].items():
            if h in wanted and hv is not None:
                hostvars[h] = dict(hv)
        if members:
            groups[gname] = {"hosts": members}
    _dump(out / "hosts.yml", {"all": {"children": groups}})
    _dump(out / "group_vars" / "all" / "00-inventory.yml", full.get("vars", {}))
    _dump(out / "group_vars" / "all" / "10-suite.yml", {
        "ansible_user": "{{ lt_admin_user }}",
        "ansible_python_interpreter": "/usr/bin/python3",
        "lt_become": "{{ ansible_user != 'root' }}",
        **suite_vars,
    })
    if lab_vars is not None:
        (out / "group_vars" / "all" / "50-lab.yml").write_text(lab_vars.read_text(encoding="utf-8"),
                                                               encoding="utf-8")
    result = Exported(path=out, hosts={})
    for site, dev in hosts:
        hv = hostvars[dev.hostname]
        hv["lt_admin_user"] = hv.pop("ansible_user", dev.username or "root")
        hv.pop("lt_credentials_ref", None)  # resolved below; the reference itself tells Ansible nothing
        secret: dict[str, Any] = {}
        refs: dict[str, str] = {}
        for key, value in site.vars.items():
            if key.endswith(SECRET_SUFFIX) and is_reference(value):
                refs[key[: -len(SECRET_SUFFIX)]] = value
            else:
                hv.setdefault(key, value)
        for name, template in (secret_refs or {}).items():
            refs[name] = template.replace("{site}", site.id).replace("{host}", dev.hostname)
        if dev.credentials:
            cred = resolve(dev.credentials, base_dir=inv.base_dir, state_dir=state_dir)
            if cred.kind == "keyfile":
                hv["ansible_ssh_private_key_file"] = cred.reveal()
                pub = Path(cred.reveal() + ".pub")
                if pub.is_file():
                    hv["lt_admin_pubkeys"] = [pub.read_text(encoding="utf-8").strip()]
            else:
                secret["ansible_password"] = cred.reveal()
                result.password_hosts.append(dev.hostname)
            if dev.credentials.startswith("env:"):
                result.env_secrets.add(dev.credentials[4:])
        for name, ref in refs.items():
            value = resolve(ref, base_dir=inv.base_dir, state_dir=state_dir)
            secret[name] = value.reveal()
            if ref.startswith("env:"):
                result.env_secrets.add(ref[4:])
        hdir = out / "host_vars" / dev.hostname
        _dump(hdir / "10-inventory.yml", hv)
        if secret:
            hdir.mkdir(parents=True, exist_ok=True)
            write_vault(hdir / "90-secrets.yml", secret, vault_password)
        result.hosts[dev.hostname] = site.id
    logger.debug("exported %d hosts to %s", len(result.hosts), out)
    return result
