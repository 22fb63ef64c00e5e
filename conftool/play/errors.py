"""Errors of `conftool play` and `conftool bootstrap`: bad input the engineer can fix (exit 2)."""

from __future__ import annotations

from conftool.errors import ConftoolError


class PlayError(ConftoolError):
    """A playbook, selector, secret or tool problem found before any host is touched."""


class BootstrapError(ConftoolError):
    """A bootstrap that cannot start (unknown role or host, missing wheelhouse, pyinfra connection refused)."""
