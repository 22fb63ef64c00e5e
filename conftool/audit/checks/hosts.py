"""hosts: meeting-room PCs and the province server — reachable over SSH, time in sync, the room agent alive.

A host that cannot be reached over SSH is `fail` (the room cannot join a meeting it cannot be managed for).
Time sync is judged from `chronyc -n tracking`: synchronised (leap status Normal, or a leap second announced) and
|offset| ≤ `OFFSET_MAX_S`. The agent is alive when the pid in `/run/lienthong/agent.pid` exists and its command
line names `meeting` and `agent`. What is not deployed yet is `skipped` with the playbook that deploys it:
chrony with no daemon and no province NTP source in its config → `conftool play baseline`; no agent config, unit
or pid file → `conftool play meeting-endpoint`. Never a silent pass.
"""

from __future__ import annotations

import logging
from typing import Any

from conftool.audit.context import SiteContext
from conftool.audit.hostfacts import AGENT_CONFIG, AGENT_PIDFILE, HostFacts
from conftool.audit.registry import register
from conftool.audit.results import Finding, Status
from conftool.inventory import Device, Role

logger = logging.getLogger(__name__)

OFFSET_MAX_S = 0.1  # 100 ms: far looser than chrony keeps a LAN host, far tighter than token/log checks tolerate
BASELINE_FIX = "conftool play baseline"
ENDPOINT_FIX = "conftool play meeting-endpoint"


def time_finding(hf: HostFacts, ntp: list[str], base: dict[str, Any]) -> Finding:
    """Time sync of one reachable host."""
    if hf.chronyc == "missing":
        return Finding(**base, kind="time", status=Status.SKIPPED,
                       detail=f"chrony is not installed on the host: run `{BASELINE_FIX}`")
    if hf.chronyc == "unparsed":
        return Finding(**base, kind="time", status=Status.ERROR, detail=str(hf.problem))
    if hf.tracking is None:  # chronyc is there, chronyd does not answer
        province = sorted(set(hf.ntp_sources) & set(ntp))
        said = (hf.chronyc_output.splitlines() or ["no answer"])[-1][:120]
        if not province:
            return Finding(**base, kind="time", status=Status.SKIPPED,
                           detail=f"time sync is not set up (no chronyd running, no province NTP server "
                                  f"{', '.join(ntp) or '(none in the inventory)'} in the chrony config): "
                                  f"run `{BASELINE_FIX}`")
        return Finding(**base, kind="time", status=Status.FAIL,
                       detail=f"chronyd is not running (configured for {', '.join(province)}): {said}",
                       data={"sources": hf.ntp_sources})
    t = hf.tracking
    data = {"reference": t.reference, "stratum": t.stratum, "offset_s": t.offset_s, "leap": t.leap,
            "province_ntp": t.reference in ntp}
    if not t.synced:
        return Finding(**base, kind="time", status=Status.FAIL,
                       detail=f"not synchronised (leap status {t.leap}, reference {t.reference})", data=data)
    if abs(t.offset_s) > OFFSET_MAX_S:
        return Finding(**base, kind="time", status=Status.FAIL,
                       detail=f"clock offset {t.offset_s * 1000:+.1f} ms > {OFFSET_MAX_S * 1000:g} ms "
                              f"(reference {t.reference})", data=data)
    return Finding(**base, kind="time", status=Status.OK,
                   detail=f"in sync with {t.reference} (stratum {t.stratum}), offset {t.offset_s * 1000:+.3f} ms",
                   data=data)


def agent_finding(hf: HostFacts, base: dict[str, Any]) -> Finding:
    """The room agent of one reachable meeting-room PC."""
    data = {"pid": hf.agent_pid, "cmdline": hf.agent_cmdline, "installed": hf.agent_installed}
    if hf.problem is not None and not hf.agent_installed and not hf.agent_pidfile:
        return Finding(**base, kind="agent", status=Status.ERROR, detail=hf.problem)
    if not hf.agent_installed and not hf.agent_pidfile:
        return Finding(**base, kind="agent", status=Status.SKIPPED,
                       detail=f"the meeting agent is not installed (no {AGENT_CONFIG}): run `{ENDPOINT_FIX}`")
    if hf.agent_pid is None:
        why = "holds no pid" if hf.agent_pidfile else "is missing"
        return Finding(**base, kind="agent", status=Status.FAIL,
                       detail=f"the agent's supervisor is not running: {AGENT_PIDFILE} {why}", data=data)
    if hf.agent_cmdline is None:
        return Finding(**base, kind="agent", status=Status.FAIL,
                       detail=f"the agent is dead: pid {hf.agent_pid} from {AGENT_PIDFILE} does not exist",
                       data=data)
    if not hf.agent_alive:
        return Finding(**base, kind="agent", status=Status.FAIL,
                       detail=f"pid {hf.agent_pid} is not the meeting agent: {hf.agent_cmdline[:120]}", data=data)
    return Finding(**base, kind="agent", status=Status.OK, detail=f"agent alive (pid {hf.agent_pid})", data=data)


def host_findings(hf: HostFacts | None, dev: Device, site_id: str, ntp: list[str], severity: str,
                  disturbed: str | None = None) -> list[Finding]:
    """`disturbed`: this machine dropped packets itself during the sessions (`conftool.audit.kernel`), so a
    session that could not connect is `error` (not judged), not the host's `fail`."""
    base: dict[str, Any] = {"site": site_id, "check": Hosts.name, "device": dev.hostname, "severity": severity}
    agent = dev.role == Role.MEETING_ENDPOINT
    if hf is None:
        return [Finding(**base, kind="ssh", status=Status.SKIPPED, detail="host facts were not gathered")]
    if hf.error is not None:
        out = [Finding(**base, kind="ssh", status=Status.FAIL, detail=hf.error) if disturbed is None else
               Finding(**base, kind="ssh", status=Status.ERROR, detail=f"not judged: {hf.error}, while {disturbed}")]
        out.append(Finding(**base, kind="time", status=Status.SKIPPED, detail="host unreachable"))
        if agent:
            out.append(Finding(**base, kind="agent", status=Status.SKIPPED, detail="host unreachable"))
        return out
    out = [Finding(**base, kind="ssh", status=Status.OK, detail=f"session ok in {hf.elapsed_s:g} s"),
           time_finding(hf, ntp, base)]
    if agent:
        out.append(agent_finding(hf, base))
    return out


class Hosts:
    name = "hosts"
    platforms: frozenset[str] | None = frozenset({"linux"})
    severity = "medium"
    facts: tuple[str, ...] = ()
    probes = False
    hosts = True  # the runner gathers `ctx.host_facts` (one SSH exec per host) when a selected check says so

    def run(self, ctx: SiteContext) -> list[Finding]:
        ntp = [str(a) for a in ctx.inv.services.ntp]
        out: list[Finding] = []
        for dev in ctx.site.hosts:
            if dev.platform not in (self.platforms or {dev.platform}):
                out.append(Finding(site=ctx.site.id, check=self.name, kind="ssh", status=Status.SKIPPED,
                                   device=dev.hostname, severity=self.severity,
                                   detail=f"platform {dev.platform} has no host checks (Linux hosts only)"))
                continue
            if not dev.managed:
                out.append(Finding(site=ctx.site.id, check=self.name, kind="ssh", status=Status.SKIPPED,
                                   device=dev.hostname, severity=self.severity,
                                   detail="not managed by the province (managed: false in the inventory)"))
                continue
            why = ctx.options.get("host_skip", {}).get(dev.hostname)
            if why is not None:
                out.append(Finding(site=ctx.site.id, check=self.name, kind="ssh", status=Status.SKIPPED,
                                   device=dev.hostname, severity=self.severity, detail=why))
                continue
            out += host_findings(ctx.host_facts.get(dev.hostname), dev, ctx.site.id, ntp, self.severity,
                                 ctx.options.get("disturbed"))
        return out


register(Hosts())
