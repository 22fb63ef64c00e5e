"""Fault injection (DESIGN §9): a link down, the router down (links down and daemons stopped), its sshd down.

Faults are recorded in the lab state so `status` shows them and `fault --clear` can undo them.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

from conftool.lab import frr, router
from conftool.lab.errors import LabError
from conftool.lab.impair import KINDS, Emulator, Params
from conftool.lab.lab import running
from conftool.lab.plan import MGMT_IF, RouterPlan
from conftool.lab.procs import Recorder
from conftool.lab.state import LabState, lab_dir, lab_lock

logger = logging.getLogger(__name__)

LINK_KINDS = ("lan", "internet", "dedicated")
TARGETS = ("link", "router", "sshd")


def _find(st: LabState, site: str) -> RouterPlan:
    assert st.plan is not None
    r = st.plan.router(site)
    if r is None:
        known = ", ".join(x.site for x in st.plan.routers)
        raise LabError(f"site {site!r} is not emulated by the running lab (sites: {known})")
    return r


def _has(st: LabState, site: str, target: str, link: str | None = None) -> bool:
    return any(f["site"] == site and f["target"] == target and f.get("link") == link for f in st.faults)


def _set(st: LabState, fault: dict[str, Any], on: bool) -> None:
    st.faults = [f for f in st.faults if not (f["site"] == fault["site"] and f["target"] == fault["target"]
                                               and f.get("link") == fault.get("link"))]
    if on:
        st.faults.append(fault)
    st.save()


def _link_if(r: RouterPlan, kind: str) -> str:
    lk = r.link(kind)
    if lk is None:
        raise LabError(f"site {r.site} has no {kind} link in the inventory")
    return lk.interface


def set_fault(site: str, target: str, down: bool, link: str | None = None,
              state_root: Path | None = None) -> dict[str, Any]:
    """Inject (down=True) or remove (down=False) one fault; returns the fault record."""
    with lab_lock(state_root):
        return _set_fault(site, target, down, link, state_root)


def _set_fault(site: str, target: str, down: bool, link: str | None, state_root: Path | None) -> dict[str, Any]:
    if target not in TARGETS:
        raise LabError(f"unknown fault target {target!r}: use --link KIND, --router or --sshd")
    if target == "link" and link not in LINK_KINDS:
        raise LabError(f"--link takes one of {', '.join(LINK_KINDS)}, not {link!r}")
    st = running(state_root)
    r = _find(st, site)
    rec = Recorder(st)
    ldir = lab_dir(state_root)
    fault: dict[str, Any] = {"site": r.site, "target": target, "link": link if target == "link" else None,
                             "state": "down"}
    router_down = _has(st, r.site, "router")
    if target == "link":
        assert link is not None
        ifname = _link_if(r, link)
        if not router_down:
            router.set_links(r, up=not down, interfaces=[ifname])
    elif target == "sshd":
        if down:
            router.stop_sshd(st, r)
        elif not router_down:
            _ensure_sshd(rec, ldir, r)
    elif down:
        router.stop_all_but_anchor(st, r)
        router.set_links(r, up=False)
    else:
        _set(st, fault, False)
        _router_up(rec, ldir, r)
        rec.save()  # the restarted daemons' PIDs
        return fault
    _set(st, fault, down)  # also saves any PID recorded above
    return fault


def _ensure_sshd(rec: Recorder, ldir: Path, r: RouterPlan) -> None:
    p = rec.state.proc(r.site, "sshd")
    if p is None or not p.alive():
        router.start_sshd(rec, ldir, r)


def _router_up(rec: Recorder, ldir: Path, r: RouterPlan) -> None:
    """Power the router back on: links up (except those with their own fault), daemons from the saved config."""
    st = rec.state
    keep_down = {_link_if(r, f["link"]) for f in st.faults
                 if f["site"] == r.site and f["target"] == "link" and f["state"] == "down"}
    router.set_links(r, up=True, interfaces=[i for i in [MGMT_IF, *(lk.interface for lk in r.links)]
                                             if i not in keep_down])
    dead = tuple(d for d in frr.DAEMONS if not ((p := st.proc(r.site, d)) and p.alive()))
    if dead:
        router.stop_all_but_anchor(st, r)  # a half-running FRR would not load the config cleanly
        router.start_frr(rec, ldir, r)
    if not _has(st, r.site, "sshd"):
        _ensure_sshd(rec, ldir, r)


def clear(site: str | None = None, state_root: Path | None = None) -> list[dict[str, Any]]:
    """Undo every fault and impairment (of one site): routers first, so their links come back with them."""
    with lab_lock(state_root):
        st = running(state_root)
        if site is not None:
            site = _find(st, site).site
        todo = [f for f in st.faults if site is None or f["site"] == site]
        order = {"router": 0, "link": 1, "sshd": 2}
        for f in sorted(todo, key=lambda f: order[f["target"]]):
            _set_fault(f["site"], f["target"], down=False, link=f.get("link"), state_root=state_root)
        st = running(state_root)
        assert st.plan is not None
        items = []
        for key, params in list(st.impair.get("links", {}).items()):
            sid, kind = key.split(":")
            r = st.plan.router(sid)
            lk = r.link(kind) if r else None
            if r is not None and lk is not None and (site is None or sid == site):
                items.append((r, lk, Params()))
                todo.append({"site": sid, "target": "link", "link": kind, "state": "impaired", **params})
        if items:
            Emulator(Recorder(st), lab_dir(state_root)).apply(items)
        return todo


def impair(site: str, link: str, loss: float | None = None, delay: float | None = None,
           state_root: Path | None = None, jitter: float | None = None, rate: float | None = None) -> dict[str, Any]:
    """Change one link's delay/jitter/loss (per direction) and rate at run time; unset values are kept.

    netem where the kernel has it, else tbf + the lab's userspace link emulator (see conftool.lab.impair).
    """
    if link not in KINDS:
        raise LabError(f"--link takes one of {', '.join(KINDS)} for impairments (the LAN is not impaired), "
                       f"not {link!r}")
    for name, value, top in (("--loss", loss, 100.0), ("--delay", delay, 60_000.0), ("--jitter", jitter, 60_000.0)):
        if value is not None and not 0 <= value <= top:
            raise LabError(f"{name} must be between 0 and {top:g}, not {value:g}")
    if rate is not None and rate < 0:
        raise LabError(f"--rate must be Mbit/s ≥ 0 (0 = no limit), not {rate:g}")
    with lab_lock(state_root):
        st = running(state_root)
        r = _find(st, site)
        lk = r.link(link)
        if lk is None:
            raise LabError(f"site {r.site} has no {link} link in the inventory")
        cur = Params(**st.impair.get("links", {}).get(f"{r.site}:{link}", {}))
        new = Params(delay_ms=cur.delay_ms if delay is None else delay,
                     jitter_ms=cur.jitter_ms if jitter is None else jitter,
                     loss_pct=cur.loss_pct if loss is None else loss,
                     rate_mbit=cur.rate_mbit if rate is None else (rate or None))
        if new.jitter_ms > new.delay_ms and new.jitter_ms:
            raise LabError(f"--jitter ({new.jitter_ms:g} ms) cannot exceed the delay ({new.delay_ms:g} ms): "
                           "a frame cannot leave before it arrived")
        emu = Emulator(Recorder(st), lab_dir(state_root))
        emu.apply([(r, lk, new)])
        return {"site": r.site, "target": "link", "link": link, "state": "impaired" if not new.empty else "up",
                "backend": emu.backend, **asdict(new)}
