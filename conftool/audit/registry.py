"""The typed register of audit checks: each check is a small module that registers itself by name.

A check is any object with ``name``, ``platforms``, ``severity``, the facts and probes it needs, and
``run(ctx) -> list[Finding]`` (a Protocol, like Nornir's plugin interfaces), so a new check is one module and
one ``register()`` call; `--check NAME` selects from this register.
"""

from __future__ import annotations

import logging
from typing import Protocol, runtime_checkable

from conftool.audit.context import SiteContext
from conftool.audit.errors import AuditError
from conftool.audit.results import Finding

logger = logging.getLogger(__name__)


@runtime_checkable
class Check(Protocol):
    """One audit check. ``run`` never raises for a device's problem: it returns findings (results are data)."""

    name: str
    platforms: frozenset[str] | None  # None: every platform
    severity: str
    facts: tuple[str, ...]  # router facts it reads (see facts.FACTS): gathered in one session per device
    probes: bool  # needs the reachability probes of the site
    # optional: `hosts = True` makes the runner gather `ctx.host_facts` (one SSH exec per Linux host of the site)

    def run(self, ctx: SiteContext) -> list[Finding]: ...


_REGISTRY: dict[str, Check] = {}
# The order checks run and are reported in: links first, then the device, its config, its baseline, hosts.
ORDER = ("reachability", "device", "drift", "compliance", "hosts")


def _ordered() -> list[Check]:
    return sorted(_REGISTRY.values(), key=lambda c: (ORDER.index(c.name) if c.name in ORDER else len(ORDER), c.name))


def register(check: Check) -> Check:
    if check.name in _REGISTRY and _REGISTRY[check.name] is not check:
        raise AuditError(f"two audit checks are named {check.name!r}")
    _REGISTRY[check.name] = check
    return check


def _load_builtin() -> None:
    # Importing the modules registers them; done lazily so nothing runs at import time of this module.
    from conftool.audit.checks import compliance, device, drift, hosts, reachability  # noqa: F401


def names() -> list[str]:
    _load_builtin()
    return [c.name for c in _ordered()]


def get(selected: list[str] | None = None) -> list[Check]:
    """The checks to run, in registration order; unknown names are a usage error naming the known ones."""
    _load_builtin()
    if not selected:
        return _ordered()
    wanted: list[str] = []
    for item in selected:
        wanted += [x.strip() for x in item.split(",") if x.strip()]
    unknown = [w for w in wanted if w not in _REGISTRY]
    if unknown:
        raise AuditError(f"unknown check {', '.join(unknown)}: choose from {', '.join(names())}")
    return [c for c in _ordered() if c.name in wanted]
