"""Exports: JSON round-trips through load(); the Ansible form is accepted by the real ansible-inventory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftool.inventory import load
from conftool.inventory.export import to_ansible, to_json
from conftool.inventory.yamlio import dump_yaml

BIN = Path(sys.executable).parent


def test_json_roundtrip(tmp_path: Path) -> None:
    inv = load("inventory/dien-bien")
    f = tmp_path / "inv.json"
    f.write_text(json.dumps(to_json(inv), ensure_ascii=False))
    again = load(f)
    assert again.data == inv.data
    assert "Điện Biên" in f.read_text(encoding="utf-8")


def test_ansible_inventory_accepts_export(tmp_path: Path) -> None:
    inv = load("inventory/dien-bien")
    f = tmp_path / "hosts.yml"
    f.write_text(dump_yaml(to_ansible(inv)), encoding="utf-8")
    out = subprocess.run([str(BIN / "ansible-inventory"), "-i", str(f), "--list"], capture_output=True,
                         text=True, check=True, env={"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(tmp_path),
                                                     "ANSIBLE_LOCAL_TEMP": str(tmp_path / "t")})
    assert "WARNING" not in out.stderr, out.stderr
    data = json.loads(out.stdout)
    hostvars = data["_meta"]["hostvars"]
    assert len(hostvars) == 270
    assert set(data["level_commune"]["hosts"]) == {d.hostname for s in inv.by_level("commune") for d in s.devices}
    assert len(data["district_096"]["hosts"]) == 2 * len(inv.children("096")) + 1
    assert len(data["role_meeting_endpoint"]["hosts"]) == 129
    pc = hostvars["pc-noong-bua"]
    assert pc["ansible_host"] == str(inv.device("pc-noong-bua")[1].mgmt_address)
    assert pc["lt_site_id"] == "03124" and pc["lt_ntp_servers"] == ["10.11.0.11"]
    # references travel, values never do
    assert pc["lt_credentials_ref"].startswith("keyfile:")
