"""Errors of the audit: bad rule files, unknown checks, an unusable target. All are `ConftoolError` (exit 2)."""

from __future__ import annotations

from conftool.errors import ConftoolError


class AuditError(ConftoolError):
    """The audit cannot run as asked (unknown check, no target, bad option)."""


class RuleError(AuditError):
    """A compliance rule file is invalid; the message names the file and the rule."""
