"""Fault injection (DESIGN §9): a link down, the router down (links down and daemons stopped), its sshd down.

Faults are recorded in the lab state so `status` shows them and `fault --clear` can undo them.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import Any

from conftool.lab import frr, router
from conftool.lab.errors import LabError
from conftool.lab.lab import running
from conftool.lab.netns import run
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
        if not down and any(f["site"] == r.site and f.get("link") == link and f["state"] == "impaired"
                            for f in st.faults):
            run([*router.enter_argv(st, r), "tc", "qdisc", "del", "dev", ifname, "root"], check=False)
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
    """Undo every fault (of one site): routers first, so their links come back with them."""
    with lab_lock(state_root):
        st = running(state_root)
        if site is not None:
            site = _find(st, site).site
        todo = [f for f in st.faults if site is None or f["site"] == site]
        order = {"router": 0, "link": 1, "sshd": 2}
        for f in sorted(todo, key=lambda f: order[f["target"]]):
            _set_fault(f["site"], f["target"], down=False, link=f.get("link"), state_root=state_root)
        return todo


def impair(site: str, link: str, loss: float | None, delay: float | None,
           state_root: Path | None = None) -> dict[str, Any]:
    """Loss/delay on a link with tc netem (lab part 2); needs the kernel's sch_netem."""
    if link not in LINK_KINDS:
        raise LabError(f"--link takes one of {', '.join(LINK_KINDS)}, not {link!r}")
    with lab_lock(state_root):
        return _impair(site, link, loss, delay, state_root)


def _impair(site: str, link: str, loss: float | None, delay: float | None,
            state_root: Path | None) -> dict[str, Any]:
    st = running(state_root)
    r = _find(st, site)
    ifname = _link_if(r, link)
    spec = [*(["delay", f"{delay}ms"] if delay else []), *(["loss", f"{loss}%"] if loss else [])]
    argv = [*router.enter_argv(st, r), "tc", "qdisc", "replace", "dev", ifname, "root", "netem", *spec]
    cp = subprocess.run(argv, capture_output=True, text=True)
    if cp.returncode != 0:
        raise LabError(f"tc netem failed on {r.site} {ifname}: {cp.stderr.strip()} — this kernel may lack "
                       "sch_netem; loss/delay impairments are not available here")
    fault = {"site": r.site, "target": "link", "link": link, "state": "impaired", "loss": loss, "delay": delay}
    st.faults.append(fault)
    st.save()
    return fault
