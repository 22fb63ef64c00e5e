"""hosts: meeting-room PCs (agent service alive, time in sync) — skipped with the reason until the playbooks land."""

from __future__ import annotations

import logging

from conftool.audit.context import SiteContext
from conftool.audit.registry import register
from conftool.audit.results import Finding, Status

logger = logging.getLogger(__name__)

REASON = ("meeting-room PC checks (agent service alive, time in sync) need the hosts' Ansible playbooks "
          "(meeting-endpoint.yml), which have not landed yet")


class Hosts:
    name = "hosts"
    platforms: frozenset[str] | None = frozenset({"linux"})
    severity = "medium"
    facts: tuple[str, ...] = ()
    probes = False

    def run(self, ctx: SiteContext) -> list[Finding]:
        return [Finding(site=ctx.site.id, check=self.name, kind="agent", status=Status.SKIPPED, detail=REASON,
                        device=d.hostname, severity=self.severity) for d in ctx.site.hosts]


register(Hosts())
