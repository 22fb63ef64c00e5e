"""The lab's errors: all are ConftoolError, so the CLI turns them into a message and exit code 2."""

from __future__ import annotations

from conftool.errors import ConftoolError


class LabError(ConftoolError):
    """The lab cannot be built, found or changed as asked; the message says what to do."""


class LabNotRunning(LabError):
    """A command needs a running lab and there is none."""
