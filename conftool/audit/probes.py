"""Reachability probes: short ICMP bursts that travel the link they judge, concurrent across sites.

A probe is judged from the far side of its link, never over the management network (which stays up when a
link fails): TSLCD from the province LAN over the TSLCD backbone to the site's LAN gateway, Internet from the
ISP side to the site's Internet address, LAN from the site's router to a host on its LAN. In the lab each probe
starts inside the right namespace (`ip netns exec`); on a real network from this machine.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import statistics
import sys
from dataclasses import dataclass, field
from typing import Any

from conftool.audit.kernel import explain
from conftool.inventory import LinkKind, Site

logger = logging.getLogger(__name__)

# 100 probes: the loss resolution is 1 %, the meeting threshold's own unit, so one stray loss on a healthy link
# (1 %) still meets a 1 % threshold while two do not; a 30 % loss passes only if ≤ 1 of 100 probes is lost
# (binomial: < 1e-13; tests/audit/test_probes.py checks it against the real grading, docs/audit.md explains).
COUNT = 100
INTERVAL_S = 0.01  # 100 probes in 1 s (100 small packets/s: nothing for even a 2 Mbit/s rural link)
# iputils allows intervals below 0.2 s to root only
USER_INTERVAL_S = 0.2
USER_COUNT = 25  # not root: 25 probes at 0.2 s (5 s); the loss resolution is then 4 %
WAIT_S = 1  # per-reply wait
_REPLY = re.compile(r"bytes from .*?time[=<]([\d.]+) ?ms")
_TOTALS = re.compile(r"(\d+) packets transmitted, (\d+) (?:packets )?received")


@dataclass(frozen=True)
class ProbeTarget:
    """Where a probe starts (`argv` prefix, e.g. `ip netns exec lt-isp`), where it goes, and what it crosses."""

    kind: str
    address: str
    source: str  # human words: "ISP side", "province LAN (lt-svc) over TSLCD"
    argv: tuple[str, ...] = ()
    netns: str | None = None  # the named namespace `argv` enters (the raw-socket prober opens its socket there)


@dataclass
class ProbeResult:
    target: ProbeTarget
    sent: int
    received: int
    rtts_ms: list[float] = field(default_factory=list)
    error: str | None = None  # the probe could not run at all (no ping, bad namespace)
    # why its loss may be this machine's own (conftool.audit.kernel), even after a retry; None: a valid burst
    disturbed: str | None = None
    retried: bool = False

    @property
    def up(self) -> bool:
        return self.error is None and self.received > 0

    @property
    def loss_pct(self) -> float:
        return round(100.0 * (self.sent - self.received) / self.sent, 1) if self.sent else 100.0

    @property
    def rtt_ms(self) -> float | None:
        return round(statistics.fmean(self.rtts_ms), 2) if self.rtts_ms else None

    @property
    def jitter_ms(self) -> float | None:
        """Mean absolute difference of consecutive round-trip times (RFC 3550's idea, without smoothing)."""
        if len(self.rtts_ms) < 2:
            return 0.0 if self.rtts_ms else None
        diffs = [abs(b - a) for a, b in zip(self.rtts_ms, self.rtts_ms[1:], strict=False)]
        return round(statistics.fmean(diffs), 2)

    def data(self) -> dict[str, Any]:
        """The metrics every consumer reads (`latest_for_sites`, reports): up, rtt_ms, loss_pct, jitter_ms."""
        out = {"up": self.up, "rtt_ms": self.rtt_ms, "loss_pct": self.loss_pct, "jitter_ms": self.jitter_ms,
               "sent": self.sent, "received": self.received, "target": self.target.address,
               "from": self.target.source}
        if self.retried:
            out["retried"] = True
        if self.disturbed:
            out["disturbed"] = self.disturbed
        return out


def parse_ping(text: str) -> tuple[int, int, list[float]]:
    """(sent, received, per-reply RTTs) from iputils `ping` output."""
    rtts = [float(m.group(1)) for m in _REPLY.finditer(text)]
    m = _TOTALS.search(text)
    if m is None:
        return (0, 0, rtts)
    return int(m.group(1)), int(m.group(2)), rtts


def default_interval() -> float:
    return INTERVAL_S if os.geteuid() == 0 else USER_INTERVAL_S


def default_count() -> int:
    return COUNT if os.geteuid() == 0 else USER_COUNT


def ping_argv(target: ProbeTarget, count: int | None = None, interval: float | None = None) -> list[str]:
    count = default_count() if count is None else count
    interval = default_interval() if interval is None else interval
    # No `-w`: with a deadline, iputils' `-c` counts *replies* and keeps sending until it has them, so a lossy
    # link would get a longer burst (195 probes for 100 replies at 51 % loss). Without it exactly `count`
    # probes leave, then ping waits at most `-W` for the last replies: a dead link costs count × interval + 1 s.
    return [*target.argv, "ping", "-n", "-c", str(count), "-i", str(interval), "-W", str(WAIT_S), target.address]


async def probe(target: ProbeTarget, count: int | None = None, interval: float | None = None) -> ProbeResult:
    count = default_count() if count is None else count
    argv = ping_argv(target, count, interval)
    try:
        proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
    except FileNotFoundError:
        return ProbeResult(target, 0, 0, error=f"{argv[0]} is not installed (iputils-ping / iproute2)")
    try:
        out, err = await proc.communicate()
    except asyncio.CancelledError:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    sent, received, rtts = parse_ping(out.decode(errors="replace"))
    if sent == 0:
        msg = (err.decode(errors="replace") or out.decode(errors="replace")).strip().splitlines()
        return ProbeResult(target, count, 0, error=(msg[-1] if msg else f"ping exited {proc.returncode}")[:200])
    return ProbeResult(target, sent, received, rtts)


class ProbePool:
    """Bounds how many bursts run at once, in total and per source namespace.

    Root's `ping` uses a raw ICMP socket, and every raw ICMP socket of a namespace receives every ICMP reply
    of that namespace: 64 bursts from one namespace means each reply is copied to 64 sockets, and on a busy
    host the sockets overflow and drop replies — the probes would report loss that is our own. 16 bursts per
    source keep the copies cheap while the ISP, TSLCD, services and router namespaces still run in parallel.
    """

    def __init__(self, limit: int = 64, per_source: int = 16) -> None:
        self.sem = asyncio.Semaphore(limit)
        self.per_source = per_source
        self._sources: dict[tuple[str, ...], asyncio.Semaphore] = {}

    async def run(self, target: ProbeTarget, timeout: float, count: int | None = None) -> ProbeResult:
        """One burst; `timeout` runs from the moment the burst starts, not while it waits for its turn."""
        src = self._sources.setdefault(target.argv, asyncio.Semaphore(self.per_source))
        async with src, self.sem:
            try:
                return await asyncio.wait_for(probe(target, count), timeout)
            except TimeoutError:
                return ProbeResult(target, 0, 0, error=f"probe did not finish within {timeout:g} s")


async def burst_all(targets: list[ProbeTarget], timeout: float) -> list[ProbeResult]:
    """Every burst of a run at once, in the order given; each result is a `ProbeResult` (never an exception).

    As root: one prober process (`conftool.audit.icmp`) sends every link's burst over one raw socket per source
    namespace, started at the same moment as the audit's SSH sessions. Not root (no raw sockets): iputils `ping`
    per link through `ProbePool`, as before.
    """
    if not targets:
        return []
    if os.geteuid() != 0:
        pool = ProbePool()
        return list(await asyncio.gather(*(pool.run(t, timeout) for t in targets)))
    count, interval = default_count(), default_interval()
    doc = {"count": count, "interval": interval, "wait": WAIT_S,
           "targets": [{"key": str(i), "address": t.address, "netns": t.netns} for i, t in enumerate(targets)]}
    from conftool.audit.icmp import PARALLEL

    # the waves, a retry of every burst at half the parallelism in the worst case, the last replies' waits
    budget = 3 * -(-len(targets) // PARALLEL) * count * interval + 2 * WAIT_S + timeout
    try:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "conftool.audit.icmp",
                                                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
    except OSError as exc:
        return [ProbeResult(t, 0, 0, error=f"the prober could not start: {exc}") for t in targets]
    try:
        out, err = await asyncio.wait_for(proc.communicate(json.dumps(doc).encode()), budget)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return [ProbeResult(t, 0, 0, error=f"the prober did not finish within {budget:g} s") for t in targets]
    except asyncio.CancelledError:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    try:
        results = {r["key"]: r for r in json.loads(out)["results"]}
    except (ValueError, KeyError, TypeError):
        why = (err.decode(errors="replace").strip().splitlines() or [f"exit {proc.returncode}"])[-1][:200]
        return [ProbeResult(t, 0, 0, error=f"the prober failed: {why}") for t in targets]
    out_list = []
    for i, t in enumerate(targets):
        r = results.get(str(i))
        if r is None:
            out_list.append(ProbeResult(t, 0, 0, error="the prober gave no result"))
        else:
            out_list.append(ProbeResult(t, int(r["sent"]), int(r["received"]), [float(x) for x in r["rtts_ms"]],
                                        error=r.get("error"), disturbed=explain(r.get("disturbed") or {}),
                                        retried=bool(r.get("retried"))))
    return out_list


# ---- where each probe starts ---------------------------------------------------------------------------
def lab_targets(site: Site, plan: Any) -> dict[str, ProbeTarget | str]:
    """Probe targets of one site inside the running lab, or the reason a link cannot be probed.

    `plan` is the lab's `LabPlan`: its clouds (`lt-isp`, `lt-tslcd`), services namespace (`lt-svc`) and the
    site's router namespace.
    """
    from conftool.lab.plan import ISP_NS, TSLCD_NS

    out: dict[str, ProbeTarget | str] = {}
    r = plan.router(site.id)
    if r is None:
        return {lk.kind.value: "site not emulated by the running lab" for lk in site.links}
    svc = plan.services
    lan, inet, ded = site.link(LinkKind.LAN), site.link(LinkKind.INTERNET), site.link(LinkKind.DEDICATED)
    if inet is not None:
        out["internet"] = (ProbeTarget("internet", str(inet.address), f"ISP side ({ISP_NS})",
                                       ("ip", "netns", "exec", ISP_NS), ISP_NS)
                           if inet.address else "the internet link has no site address in the inventory")
    if ded is not None:
        if svc is not None and lan is not None and lan.address is not None and site.id != svc.router_site:
            out["dedicated"] = ProbeTarget("dedicated", str(lan.address),
                                           f"province LAN ({svc.namespace}) over TSLCD",
                                           ("ip", "netns", "exec", svc.namespace), svc.namespace)
        elif ded.address is not None:
            out["dedicated"] = ProbeTarget("dedicated", str(ded.address), f"TSLCD backbone ({TSLCD_NS})",
                                           ("ip", "netns", "exec", TSLCD_NS), TSLCD_NS)
        else:
            out["dedicated"] = "the dedicated link has no site address in the inventory"
    if lan is not None:
        hosts = [h.address.split("/")[0] for h in getattr(plan, "hosts", []) if h.site == site.id]
        if svc is not None and site.id == svc.router_site:
            hosts += [a.split("/")[0] for a in svc.addresses]
        if hosts:
            out["lan"] = ProbeTarget("lan", hosts[0], f"site router ({r.namespace}) over the LAN",
                                     ("ip", "netns", "exec", r.namespace), r.namespace)
        else:
            out["lan"] = "no LAN host is emulated at this site in the lab (no meeting-room PC in the inventory)"
    return out


def direct_targets(site: Site) -> dict[str, ProbeTarget | str]:
    """On a real network, from this machine (the NOC): each link's site-side address, LAN hosts by address."""
    out: dict[str, ProbeTarget | str] = {}
    for lk in site.links:
        kind = lk.kind.value
        if kind == "lan":
            host = next((d.address for d in site.hosts if d.address is not None and d.address in lk.prefix), None)
            out[kind] = (ProbeTarget(kind, str(host), "NOC") if host is not None
                         else "no host with a LAN address at this site in the inventory")
        elif lk.address is not None:
            out[kind] = ProbeTarget(kind, str(lk.address), "NOC")
        else:
            out[kind] = f"the {kind} link has no site address in the inventory"
    return out
