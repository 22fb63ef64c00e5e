"""`conftool play` refuses bad input with exit 2 and a clear message, before touching any host."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

CONFTOOL = str(Path(sys.executable).parent / "conftool")


def run(*args: str, state: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CONFTOOL, *args], capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "LIENTHONG_STATE": str(state)})


@pytest.mark.parametrize(("args", "message"), [
    (["play", "nope"], "playbook 'nope' not found: use one of baseline"),
    (["play", "baseline", "--site", "no-such-site"], "selector 'no-such-site' matches no site"),
    (["play", "baseline", "--secret-ref", "meeting_token=clear-text"], "must be a reference"),
    (["play", "baseline", "--site", "03124"], "key file"),  # no lab key yet: names the missing key, no traceback
])
def test_bad_input_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    cp = run(*args, state=tmp_path)
    assert cp.returncode == 2, cp.stdout + cp.stderr
    assert message in " ".join(cp.stderr.split())
    assert "Traceback" not in cp.stderr
    cpj = run(*args, "--json", state=tmp_path)
    assert cpj.returncode == 2 and message.split(":")[0] in json.loads(cpj.stdout)["error"]


def test_selection_without_linux_hosts(tmp_path: Path, reference_inventory: Path) -> None:
    # A district site has only its router: nothing for Ansible to do is an input error, not an empty success.
    cp = run("play", "baseline", "--site", "095", "--inventory", str(reference_inventory), state=tmp_path)
    assert cp.returncode == 2 and "no Linux host" in cp.stderr
