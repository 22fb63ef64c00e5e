"""One root error for conftool so the CLI can turn every expected failure into a message and an exit code."""

from __future__ import annotations

from dataclasses import dataclass, field


class ConftoolError(Exception):
    """Root of every error conftool raises on purpose (bad input, missing tools, unreachable things).

    The CLI prints ``str(err)`` and exits with ``exit_code``; anything else is a bug and shows a traceback.
    """

    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One thing wrong in the inventory, located well enough that an engineer can go and fix it."""

    file: str
    path: str
    message: str
    site: str | None = None
    hint: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "")
        if self.path:
            where += f" [{self.path}]"
        if self.site:
            where += f" (site {self.site})"
        text = f"{where}: {self.message}"
        if self.hint:
            text += f" — {self.hint}"
        return text

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "path": self.path,
            "site": self.site,
            "message": self.message,
            "hint": self.hint,
        }


@dataclass
class InventoryError(ConftoolError):
    """The inventory cannot be used: carries *all* problems found, not only the first."""

    problems: list[Problem] = field(default_factory=list)

    def __str__(self) -> str:
        n = len(self.problems)
        head = f"inventory has {n} problem{'s' if n != 1 else ''}:"
        return "\n".join([head, *(f"  - {p}" for p in self.problems)])


class SelectorError(ConftoolError, ValueError):
    """A ``--site`` selector that is malformed or matches nothing."""


class SecretError(ConftoolError):
    """A credential reference that cannot be resolved; never carries the secret value itself."""


class AdminUnitError(ConftoolError, LookupError):
    """An administrative unit (province/district/commune) that the GSO data does not know."""
