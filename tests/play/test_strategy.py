"""Strategy selection of `conftool play` without a lab: the environment handed to ansible-playbook for the
default (mitogen) and the plain path. The lab test (`test_lab_play.py::test_second_run_changes_nothing`) runs
both for real; this keeps the choice itself covered in the default (non-lab) run."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftool.play import PlayOptions, playbooks_dir
from conftool.play.runner import DEFAULT_STRATEGY, _envvars


def envvars(tmp_path: Path, opts: PlayOptions) -> dict[str, str]:
    run = tmp_path / "run"
    run.mkdir()
    return _envvars(opts, run, tmp_path / "client", playbooks_dir())


def test_default_is_mitogen_with_its_plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LIENTHONG_PLAY_STRATEGY", raising=False)
    opts = PlayOptions()
    assert opts.strategy == DEFAULT_STRATEGY == "mitogen_linear"
    env = envvars(tmp_path, opts)
    assert env["ANSIBLE_STRATEGY"] == "mitogen_linear"
    assert (Path(env["ANSIBLE_STRATEGY_PLUGINS"]) / "mitogen_linear.py").is_file()


@pytest.mark.parametrize("strategy", ["linear", "free"])
def test_plain_strategy_from_the_environment_has_no_mitogen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            strategy: str) -> None:
    monkeypatch.setenv("LIENTHONG_PLAY_STRATEGY", strategy)
    opts = PlayOptions()
    assert opts.strategy == strategy
    env = envvars(tmp_path, opts)
    assert env["ANSIBLE_STRATEGY"] == strategy and "ANSIBLE_STRATEGY_PLUGINS" not in env
    assert env["ANSIBLE_PIPELINING"] == "True" and "ControlPersist=120s" in env["ANSIBLE_SSH_ARGS"]
