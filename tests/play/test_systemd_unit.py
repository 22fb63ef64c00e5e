"""The meeting-endpoint role's systemd unit, rendered by Ansible itself and checked by `systemd-analyze verify`.

The lab cannot run the role's systemd branch (no systemd as PID 1 here), so this is what covers the unit file:
the role's real template with the role's own defaults and vars, rendered by ansible-playbook's template module,
then parsed by systemd's own loader. `verify` checks that ExecStart's program exists, so the test points the
role's venv at a temporary one holding an executable `bin/meeting`; everything else is the role's default.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftool.play import playbooks_dir

ROLE = playbooks_dir() / "roles" / "meeting_endpoint"
ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")

RENDER = f"""
- hosts: localhost
  connection: local
  gather_facts: false
  vars_files:
    - {ROLE / "defaults" / "main.yml"}
    - {ROLE / "vars" / "main.yml"}
  tasks:
    - ansible.builtin.template:
        src: {ROLE / "templates" / "lienthong-agent.service.j2"}
        dest: "{{{{ out }}}}"
        mode: "0644"
"""


def render_unit(tmp_path: Path, **extra: str) -> Path:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True, exist_ok=True)
    meeting = venv / "bin" / "meeting"
    meeting.write_text("#!/bin/sh\nexit 0\n")
    meeting.chmod(0o755)
    play = tmp_path / "render.yml"
    play.write_text(RENDER)
    unit = tmp_path / "lienthong-agent.service"
    evars = {"out": str(unit), "lt_site_id": "03124", "lt_meeting_server": "10.11.0.20",
             "meeting_endpoint_venv": str(venv), "ansible_python_interpreter": sys.executable, **extra}
    args = [a for k, v in evars.items() for a in ("-e", f"{k}={v}")]
    cp = subprocess.run([ANSIBLE_PLAYBOOK, "-i", "localhost,", str(play), *args], capture_output=True, text=True,
                        timeout=120, cwd=tmp_path)
    assert cp.returncode == 0, cp.stdout[-2000:] + cp.stderr[-2000:]
    return unit


@pytest.fixture(scope="module")
def systemd_analyze() -> str:
    exe = shutil.which("systemd-analyze")
    if exe is None:
        pytest.fail("systemd-analyze missing: scripts/apt-packages.txt lists the Debian package systemd")
    return exe


def test_rendered_unit_passes_systemd_analyze_verify(tmp_path: Path, systemd_analyze: str) -> None:
    unit = render_unit(tmp_path)
    text = unit.read_text()
    assert f"ExecStart={tmp_path}/venv/bin/meeting agent --config /etc/lienthong/agent.yml" in text
    assert "(site 03124)" in text and "Restart=always" in text
    cp = subprocess.run([systemd_analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    # verify prints problems (unknown keys, missing programs, bad syntax) on stderr, even when it exits 0
    assert cp.returncode == 0 and not cp.stderr.strip(), cp.stderr


def test_verify_catches_keys_this_systemd_does_not_know(tmp_path: Path, systemd_analyze: str) -> None:
    """The growing-backoff keys need systemd >= 254: on this machine's systemd the check above must see them."""
    version = subprocess.run([systemd_analyze, "--version"], capture_output=True, text=True).stdout.split()[1]
    unit = render_unit(tmp_path, meeting_endpoint_systemd_backoff="true")
    assert "RestartMaxDelaySec=30" in unit.read_text()
    cp = subprocess.run([systemd_analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    if int(version) < 254:
        assert "Unknown key 'RestartSteps'" in cp.stderr, cp.stderr
    else:
        assert not cp.stderr.strip(), cp.stderr


def test_playbooks_pass_syntax_check(tmp_path: Path) -> None:
    """All of the playbooks, systemd branches included, parse (modules, arguments, role wiring): the part of the
    systemd path that no test here can run."""
    pb = playbooks_dir()
    books = sorted(p.name for p in pb.glob("*.yml") if p.name != "lab-vars.yml")
    assert {"baseline.yml", "meeting-endpoint.yml", "soc-forwarding.yml"} <= set(books)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "ANSIBLE_CONFIG": str(pb / "ansible.cfg"),
           "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp")}
    cp = subprocess.run([ANSIBLE_PLAYBOOK, "-i", "localhost,", "--syntax-check", *books], capture_output=True,
                        text=True, timeout=120, cwd=pb, env=env)
    assert cp.returncode == 0, cp.stdout[-2000:] + cp.stderr[-2000:]
    assert all(f"playbook: {b}" in cp.stdout for b in books), cp.stdout
