"""Run an audit: every selected check over every selected site, concurrently, each site under its own timeout.

The probe bursts of every site (one prober process, about two seconds) and the device sessions of every site
(one Netmiko session per router, one SSH exec per host, in a thread pool) start together; each session is bounded
by the device's `timeout_s`, so a dead site costs at most its timeout and never stalls the others. Checks then
judge the gathered facts; a check that crashes on one site becomes an `error` finding for that site (results
are data, like Nornir's), never an exception that stops the run.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from conftool.audit import facts as factmod
from conftool.audit import hostfacts
from conftool.audit.context import SiteContext
from conftool.audit.errors import AuditError
from conftool.audit.kernel import drop_counters, explain, moved
from conftool.audit.probes import ProbeResult, ProbeTarget, burst_all, direct_targets, lab_targets
from conftool.audit.registry import Check
from conftool.audit.results import Finding, RunRecord, Status, utcnow
from conftool.audit.rules import Rule
from conftool.audit.workers import SessionPool, default_procs
from conftool.errors import ConftoolError
from conftool.inventory import Device, Inventory, Site
from conftool.render import Renderer

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 20.0
MAX_SESSIONS = 64  # concurrent SSH sessions (threads); Nornir's anchor runs 20 workers


@dataclass
class Target:
    """How the audit reaches the network: the running lab (namespaces) or directly from this machine."""

    mode: Literal["lab", "direct"]
    plan: Any = None  # conftool.lab.plan.LabPlan in lab mode
    state_dir: Path | None = None

    def emulates(self, site_id: str) -> bool:
        return self.mode == "direct" or (self.plan is not None and self.plan.router(site_id) is not None)


def detect_target(state_dir: Path | None, direct: bool) -> Target:
    """The running lab if there is one (unless `direct`), else direct mode only when asked for explicitly."""
    if direct:
        return Target("direct", None, state_dir)
    from conftool.lab.lab import current

    st = current(state_dir)
    if st is not None and st.plan is not None and st.status == "running" and st.is_live():
        return Target("lab", st.plan, state_dir)
    raise AuditError("no lab is running: start one with `conftool lab up`, or pass --direct to audit the real "
                     "network from this machine (SSH and probes leave from here)")


def site_timeout(site: Site) -> float:
    return max((d.timeout_s for d in site.routers), default=DEFAULT_TIMEOUT_S)


@dataclass
class Auditor:
    """One audit run. Create, then `await run()` (or call `run_sync()`)."""

    inv: Inventory  # the whole province: intended configs and routes depend on every site
    selection: Inventory
    checks: list[Check]
    rules: list[Rule]
    target: Target
    selector: str = ""
    on_site: Callable[[Site, list[Finding]], None] | None = None
    on_start: Callable[[Site], None] | None = None
    max_sessions: int = MAX_SESSIONS
    procs: int | None = None  # worker processes for the sessions; None: `workers.default_procs`, 0: threads here
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._t0 = time.monotonic()
        self._drops0 = drop_counters()
        self._procs: SessionPool | None = None
        self._sessions = asyncio.Semaphore(self.max_sessions)
        self.renderer = Renderer(self.inv)
        self.fact_names = sorted({n for c in self.checks for n in c.facts})
        self.want_probes = any(c.probes for c in self.checks)
        # optional attribute: a check that reads Linux hosts (one SSH exec each, in the same thread pool)
        self.want_hosts = any(getattr(c, "hosts", False) for c in self.checks)

    # ---- gathering --------------------------------------------------------------------------------------
    def _params(self, site: Site, dev: Device) -> dict[str, Any]:
        from conftool.devices.session import Target as DevTarget
        from conftool.devices.session import netmiko_params

        params = netmiko_params(self.inv, DevTarget(site, dev))
        params["conn_timeout"] = dev.timeout_s  # one budget per device: the site's timeout
        return params

    async def _facts(self, pool: ThreadPoolExecutor, site: Site, dev: Device) -> factmod.DeviceFacts:
        timeout = dev.timeout_s
        try:
            params = self._params(site, dev)
        except ConftoolError as exc:  # no mgmt address, unresolvable credentials: said once, as an error
            return factmod.DeviceFacts(site.id, dev.hostname, dev.platform, error=str(exc))
        loop = asyncio.get_running_loop()
        try:
            # the timeout runs from the moment the session starts, not while it waits for a free worker
            async with self._sessions:
                if self._procs is not None:
                    return await asyncio.wait_for(  # type: ignore[no-any-return]
                        self._procs.call("facts", site, dev, params, self.fact_names, timeout), timeout)
                fut = loop.run_in_executor(pool, factmod.gather, site, dev, params, self.fact_names, timeout)
                return await asyncio.wait_for(fut, timeout)
        except RuntimeError as exc:  # the worker process died under this session
            return factmod.DeviceFacts(site.id, dev.hostname, dev.platform, error=str(exc))
        except TimeoutError:
            return factmod.DeviceFacts(site.id, dev.hostname, dev.platform,
                                       error=f"no complete answer within the device timeout ({timeout:g} s)",
                                       elapsed_s=timeout)

    async def _host_facts(self, pool: ThreadPoolExecutor, site: Site, dev: Device) -> hostfacts.HostFacts:
        timeout = dev.timeout_s
        loop = asyncio.get_running_loop()
        args = hostfacts.connect_args(self.inv, dev)
        if isinstance(args, str):
            return hostfacts.HostFacts(site.id, dev.hostname, error=args)
        try:
            async with self._sessions:
                if self._procs is not None:
                    return await asyncio.wait_for(  # type: ignore[no-any-return]
                        self._procs.call("host", site.id, dev.hostname, args, timeout), timeout)
                fut = loop.run_in_executor(pool, hostfacts.gather_with, site.id, dev.hostname, args, timeout)
                return await asyncio.wait_for(fut, timeout)
        except RuntimeError as exc:
            return hostfacts.HostFacts(site.id, dev.hostname, error=str(exc))
        except TimeoutError:
            return hostfacts.HostFacts(site.id, dev.hostname, elapsed_s=timeout,
                                       error=f"no complete answer within the device timeout ({timeout:g} s)")

    def _targets(self, site: Site) -> dict[str, ProbeTarget | str]:
        if not self.want_probes or not self.target.emulates(site.id):
            return {}
        if self.target.mode == "lab":
            return lab_targets(site, self.target.plan)
        return direct_targets(site)

    async def _probe_all(self, sites: list[Site]) -> list[dict[str, ProbeResult | str]]:
        """Every site's bursts in one batch; a link that cannot be probed keeps its reason (a string)."""
        per_site = [self._targets(s) for s in sites]
        todo = [(i, kind, t) for i, ts in enumerate(per_site) for kind, t in ts.items()
                if isinstance(t, ProbeTarget)]
        timeout = max((site_timeout(s) for s in sites), default=DEFAULT_TIMEOUT_S)
        results = await burst_all([t for _, _, t in todo], timeout)
        out: list[dict[str, ProbeResult | str]] = [{k: v for k, v in ts.items() if isinstance(v, str)}
                                                   for ts in per_site]
        for (i, kind, _), res in zip(todo, results, strict=True):
            out[i][kind] = res
        return out

    async def _site(self, pool: ThreadPoolExecutor, site: Site, index: int,
                    probing: asyncio.Task[list[dict[str, ProbeResult | str]]]) -> list[Finding]:
        if self.on_start:
            self.on_start(site)
        if not self.target.emulates(site.id):
            skipped = [Finding(site=site.id, check=c.name, kind="site", status=Status.SKIPPED,
                               detail="site not emulated by the running lab (use --site to pick lab sites)")
                       for c in self.checks]
            if self.on_site:
                self.on_site(site, skipped)
            return skipped
        ctx = SiteContext(inv=self.inv, site=site, rules=self.rules, options={"renderer": self.renderer})
        # our own kernel dropped packets since the run started: a session that could not connect is not judged
        routers = site.routers if self.fact_names else []
        hosts = [d for d in site.hosts if d.platform == "linux" and d.managed] if self.want_hosts else []
        if self.target.mode == "lab" and hosts:
            emulated = {h.hostname for h in getattr(self.target.plan, "hosts", [])}
            ctx.options["host_skip"] = {d.hostname: "host not emulated by the running lab"
                                        for d in hosts if d.hostname not in emulated}
            hosts = [d for d in hosts if d.hostname in emulated]
        gathered = await asyncio.gather(asyncio.gather(*(self._facts(pool, site, d) for d in routers)),
                                        asyncio.gather(*(self._host_facts(pool, site, d) for d in hosts)))
        dev_facts, host_facts = gathered
        self.timings["sessions_s"] = max(self.timings.get("sessions_s", 0.0), round(time.monotonic() - self._t0, 3))
        ctx.probes.update((await probing)[index])
        ctx.facts.update({f.hostname: f for f in dev_facts})
        ctx.host_facts.update({f.hostname: f for f in host_facts})
        # only the ARP table: SSH retransmits what a busy input backlog drops, but no neighbour = no session
        ctx.options["disturbed"] = explain({k: n for k, n in moved(self._drops0, drop_counters()).items()
                                            if k == "arp_table_full"})
        out: list[Finding] = []
        t_checks = time.perf_counter()
        for c in self.checks:
            try:
                out += c.run(ctx)
            except Exception as exc:  # a bug in one check on one site must not stop the audit
                logger.exception("check %s crashed on site %s", c.name, site.id)
                out.append(Finding(site=site.id, check=c.name, kind="crash", status=Status.ERROR,
                                   detail=f"check crashed: {exc.__class__.__name__}: {exc}"))
        self.timings["checks_cpu_s"] = round(self.timings.get("checks_cpu_s", 0.0) + time.perf_counter() - t_checks,
                                             3)
        if self.on_site:
            self.on_site(site, out)
        return out

    async def run(self) -> RunRecord:
        """Probe bursts of every site and the device sessions of every site, all started at once.

        The bursts come from one prober process that reads the kernel's receive stamps (`conftool.audit.icmp`),
        so the SSH work running beside it does not show up as RTT or jitter; without root they are `ping`
        processes and run before the sessions instead, so our own CPU load is not judged as the link's.
        Sessions are bounded per device, so a dead site costs at most its timeout.
        """
        started = utcnow()
        t0 = self._t0 = time.monotonic()
        self._drops0 = drop_counters()
        sites = list(self.selection.sites)
        n_routers = sum(len(s.routers) + (len(s.hosts) if self.want_hosts else 0) for s in sites)
        workers = max(1, min(self.max_sessions, n_routers))
        self._sessions = asyncio.Semaphore(workers)

        async def probe_phase() -> list[dict[str, ProbeResult | str]]:
            res = await self._probe_all(sites)
            self.timings["probes_s"] = round(time.monotonic() - t0, 3)
            return res

        probing = asyncio.ensure_future(probe_phase())
        if os.geteuid() != 0:
            await probing
        n_procs = default_procs(n_routers) if self.procs is None else self.procs
        self.timings["procs"] = n_procs
        # spare threads: a session abandoned at its timeout keeps its thread until Netmiko gives up
        pool = ThreadPoolExecutor(max_workers=workers * 2, thread_name_prefix="audit-ssh")
        if n_procs:
            self._procs = SessionPool(n_procs, workers * 2)
            await self._procs.start()
        try:
            per_site = await asyncio.gather(*(self._site(pool, s, i, probing) for i, s in enumerate(sites)))
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            if self._procs is not None:
                await self._procs.close()
                self._procs = None
            if not probing.done():
                probing.cancel()
        self.timings["wall_s"] = round(time.monotonic() - t0, 3)
        findings = [f for fs in per_site for f in fs]
        return RunRecord(started_at=started, finished_at=utcnow(), selector=self.selector,
                         checks=[c.name for c in self.checks], findings=findings, province=self.inv.province.id)

    def run_sync(self) -> RunRecord:
        return asyncio.run(self.run())
