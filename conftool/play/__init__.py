"""Ansible runs over the province's Linux hosts (`conftool play`) and pyinfra bootstrap of the suite's servers."""

from conftool.play.errors import BootstrapError, PlayError
from conftool.play.events import HostProgress, HostResult
from conftool.play.export import linux_hosts, parse_secret_refs
from conftool.play.runner import DEFAULT_FORKS, PlayOptions, PlayReport, find_playbook, playbooks_dir, run_play

__all__ = [
    "DEFAULT_FORKS",
    "BootstrapError",
    "HostProgress",
    "HostResult",
    "PlayError",
    "PlayOptions",
    "PlayReport",
    "find_playbook",
    "linux_hosts",
    "parse_secret_refs",
    "playbooks_dir",
    "run_play",
]
