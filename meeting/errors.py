"""One root error for the meeting service : CLI and API turn expected failures into codes, not tracebacks."""

from __future__ import annotations

from typing import Any


class MeetingError(Exception):
    """Root of every error the meeting service raises on purpose.

    ``exit_code`` is what the CLI exits with, ``http_status`` what the API answers. ``message`` is the
    Vietnamese msgid of the translation catalog (the English text comes from ``meeting/web/locale``), so the
    same error reads well in both languages; ``params`` fill its ``{placeholders}``.
    """

    exit_code = 2
    http_status = 400

    def __init__(self, message: str, *, field: str | None = None, **params: Any) -> None:
        self.message = message
        self.field = field
        self.params = params
        super().__init__(self.render("en"))

    def render(self, lang: str = "vi") -> str:
        from meeting.i18n import translate

        return translate(self.message, lang).format(**self.params)


class InvalidInput(MeetingError, ValueError):
    """A request or command argument is wrong (end before start, unknown site, broken RRULE …)."""

    http_status = 422


class NotFound(MeetingError, LookupError):
    http_status = 404


class Conflict(MeetingError):
    """The meeting would put a site (or the host room) in two overlapping meetings."""

    http_status = 409
    exit_code = 1

    def __init__(self, message: str, conflicts: list[dict[str, Any]], **params: Any) -> None:
        self.conflicts = conflicts
        super().__init__(message, **params)


class AuthError(MeetingError):
    """Not logged in, bad credentials or a revoked/expired token."""

    http_status = 401


class Forbidden(MeetingError, PermissionError):
    http_status = 403


class RateLimited(MeetingError):
    http_status = 429


class InvalidToken(AuthError):
    """A join token whose signature, expiry or meeting does not check out."""
