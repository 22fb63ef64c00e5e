"""`lab up` / `lab down` / `lab status`: build the emulated province from the inventory, record it, undo it."""

from __future__ import annotations

import logging
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

from conftool.inventory import Inventory
from conftool.lab import frr, host, impair, neigh, netns, router, services, sshd
from conftool.lab.errors import LabError, LabNotRunning
from conftool.lab.plan import ISP_NS, MGMT_BRIDGE, TSLCD_NS, LabPlan, build_plan, lab_prefixes
from conftool.lab.procs import Recorder, kill_pids, stop
from conftool.lab.profiles import profile_sites
from conftool.lab.state import LabState, lab_dir, lab_lock

logger = logging.getLogger(__name__)

STATE_FILE = "state.json"
START_WORKERS = 16


def _state_path(state_root: Path | None) -> Path:
    return lab_dir(state_root) / STATE_FILE


def current(state_root: Path | None = None) -> LabState | None:
    return LabState.load(_state_path(state_root))


def running(state_root: Path | None = None) -> LabState:
    st = current(state_root)
    if st is None or st.plan is None or not st.is_live():
        raise LabNotRunning("no lab is running: start one with `conftool lab up`")
    return st


def running_sites(state_dir: Path | None = None) -> list[str] | None:
    """Site ids the running lab emulates, or None when no lab runs (DESIGN §9 device-command default).

    `state_dir` is the suite's state directory (LIENTHONG_STATE), not its `lab/` subdirectory.
    """
    st = current(state_dir)
    if st is None or st.plan is None or st.status != "running" or not st.is_live():
        return None
    return [r.site for r in st.plan.routers]


# --- preflight ---------------------------------------------------------------------------------------
def preflight_tools() -> None:
    if os.geteuid() != 0:
        raise LabError("the lab needs root (network namespaces, veth links, mounts): run it as root, "
                       "e.g. `sudo conftool lab up`")
    if shutil.which("ip") is None:
        raise LabError("`ip` (iproute2) is missing: run scripts/install.sh")
    netns.existing_namespaces()  # raises when `ip netns` does not work
    missing = frr.missing_binaries()
    if missing:
        raise LabError(f"FRRouting is missing ({', '.join(missing)}): install Debian's frr (scripts/install.sh)")
    if not sshd.SSHD.exists():
        raise LabError(f"{sshd.SSHD} is missing: install openssh-server (scripts/install.sh)")
    missing = services.missing_binaries()
    if missing:
        raise LabError(f"{', '.join(missing)} missing: install chrony and dnsmasq-base (scripts/install.sh)")


def check_overlaps(plan: LabPlan, routes: list[IPv4Network]) -> None:
    clash = netns.overlaps(lab_prefixes(plan), routes)
    if clash:
        shown = ", ".join(sorted({f"{w} overlaps {r}" for w, r in clash})[:6])
        raise LabError(f"the lab's prefixes overlap routes of this machine ({shown}): the lab would hijack "
                       "real traffic. Change the addressing in the inventory (services.mgmt_prefix, link prefixes) "
                       "or remove the route; nothing was built")


def check_names_free(plan: LabPlan) -> None:
    taken = sorted(set(plan.namespaces) & netns.existing_namespaces())
    if taken:
        raise LabError(f"network namespace(s) {', '.join(taken)} already exist and are not a lab of ours: "
                       "remove them (`ip netns del NAME`) or run the lab on a machine where they are free")
    links = sorted({MGMT_BRIDGE, *(r.root_if for r in plan.routers), *(h.root_if for h in plan.hosts)}
                   & netns.root_links())
    if links:
        raise LabError(f"interface(s) {', '.join(links[:5])} already exist in the root namespace: remove them "
                       "first (`ip link del NAME`)")


# --- up ----------------------------------------------------------------------------------------------
def up(inv: Inventory, profile: str = "small", state_root: Path | None = None,
       impair: str | None = None) -> LabState:
    """Build the lab (with the links impaired as the named profile says); on any failure undo what was built."""
    preflight_tools()
    with lab_lock(state_root):
        return _up(inv, profile, state_root, impair)


def _up(inv: Inventory, profile: str, state_root: Path | None, impair_profile: str | None = None) -> LabState:
    plan = build_plan(inv, profile_sites(inv, profile), profile)
    prof = impair.load_profile(impair_profile) if impair_profile else None
    ldir = lab_dir(state_root)
    old = current(state_root)
    if old is not None:
        if old.is_live():
            n = len(old.plan.routers) if old.plan else 0
            what = "running" if old.status == "running" else "half-built (its processes still run)"
            raise LabError(f"a lab is already {what} ({n} routers, state {old.path}): "
                           "take it down first with `conftool lab down`")
        logger.warning("cleaning a stale lab left in %s", old.path)
        teardown(old)
    check_names_free(plan)
    check_overlaps(plan, netns.root_routes())

    created_dir = not ldir.exists()
    ldir.mkdir(parents=True, exist_ok=True)
    state = LabState(path=ldir / STATE_FILE, plan=plan)
    state.files = [str(ldir)] if created_dir else [str(ldir / n) for n in ("routers", "hosts", "svc", "wire", "keys",
                                                                      STATE_FILE)]
    state.save()
    rec = Recorder(state)
    t0 = time.monotonic()
    try:
        _build(rec, ldir, plan)
        if prof is not None:
            t = time.monotonic()
            _impair_all(rec, ldir, plan, prof)
            state.timings["impair_s"] = round(time.monotonic() - t, 2)
    except BaseException:
        logger.error("lab up failed: removing what was built")
        teardown(state)
        raise
    state.status = "running"
    state.timings["up_s"] = round(time.monotonic() - t0, 2)
    state.save()
    return state


def _build(rec: Recorder, ldir: Path, plan: LabPlan) -> None:
    state = rec.state
    t = time.monotonic()
    # Record intent first: a crash in the middle still leaves `down` everything it needs.
    state.namespaces = list(plan.namespaces)
    if not netns.NETNS_DIR.exists():
        state.created_dirs.append(str(netns.NETNS_DIR))
    if not netns.netns_dir_mounted():
        state.mounts.append(str(netns.NETNS_DIR))
    state.root_links = [MGMT_BRIDGE, *(r.root_if for r in plan.routers), *(h.root_if for h in plan.hosts)]
    state.save()
    state.sysctls = neigh.raise_for(len(plan.routers) + len(plan.hosts))
    state.save()
    netns.ip_batch(netns.root_batch(plan))
    netns.no_forwarding_from(MGMT_BRIDGE)
    netns.build_routers(plan)
    netns.build_clouds(plan)
    state.timings["links_s"] = round(time.monotonic() - t, 2)

    t = time.monotonic()
    user = plan.routers[0].username
    ident = sshd.Identity(user)
    key, host_key = sshd.ensure_keys(ldir / "keys")
    pubkey = key.with_suffix(".pub").read_text()
    for r in plan.routers:
        router.prepare(ldir, r, ident, host_key, pubkey)
    host.prepare_all(ldir, plan, host_key, pubkey)
    state.timings["files_s"] = round(time.monotonic() - t, 2)

    t = time.monotonic()
    with ThreadPoolExecutor(START_WORKERS) as pool:
        for fut in [pool.submit(router.start, rec, ldir, r) for r in plan.routers]:
            fut.result()
    state.timings["routers_s"] = round(time.monotonic() - t, 2)
    t = time.monotonic()
    with ThreadPoolExecutor(START_WORKERS) as pool:
        for fut in [pool.submit(host.start, rec, ldir, h) for h in plan.hosts]:
            fut.result()
    state.timings["hosts_s"] = round(time.monotonic() - t, 2)
    t = time.monotonic()
    services.start(rec, ldir, plan)
    state.timings["services_s"] = round(time.monotonic() - t, 2)
    state.impair["backend"] = "netem" if impair.probe_netem(plan.routers[0].namespace) else "forwarder"


def _impair_all(rec: Recorder, ldir: Path, plan: LabPlan, prof: dict[str, Any]) -> None:
    rec.state.impair["profile"] = prof["name"]
    items = [(r, lk, impair.profile_params(prof, r, lk)) for r in plan.routers for lk in r.links
             if lk.kind in impair.KINDS and lk.cloud_if]
    impair.Emulator(rec, ldir).apply([i for i in items if not i[2].empty])


# --- down --------------------------------------------------------------------------------------------
def teardown(state: LabState) -> dict[str, int]:
    """Kill every process, delete every link and namespace, remove every file the state records."""
    names = list(state.namespaces or (state.plan.namespaces if state.plan else []))
    recorded = [p for p in state.processes if p.alive()]
    in_ns = netns.pids_in_netns(names)
    stop(recorded)
    kill_pids(in_ns)
    leftovers = netns.pids_in_netns(names)
    if leftovers:
        kill_pids(leftovers)
    netns.delete(names, state.root_links)
    neigh.restore(state.sysctls)
    if state.mounts or state.created_dirs:
        netns.release_netns_dir(str(netns.NETNS_DIR) in state.mounts, str(netns.NETNS_DIR) in state.created_dirs)
    for f in state.files:
        p = Path(f)
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    state.path.unlink(missing_ok=True)
    state.path.with_suffix(".tmp").unlink(missing_ok=True)
    return {"processes": len(set(p.pid for p in recorded) | set(in_ns)), "namespaces": len(names),
            "links": len(state.root_links)}


def down(state_root: Path | None = None) -> dict[str, int] | None:
    """Take the lab down (running, half-built or stale); None when there was nothing to do."""
    if os.geteuid() != 0:
        raise LabError("taking the lab down needs root: run it as root")
    with lab_lock(state_root):
        st = current(state_root)
        if st is None:
            return None
        return teardown(st)


# --- status ------------------------------------------------------------------------------------------
def status(state_root: Path | None = None) -> dict[str, Any]:
    """The DESIGN §9 shape: {"nodes": [{"site", "role", "namespace", "mgmt_address", "up", "daemons"}]}."""
    st = current(state_root)
    if st is None or st.plan is None:
        return {"running": False, "nodes": []}
    plan = st.plan
    have_ns = netns.existing_namespaces()
    faults = st.faults
    nodes: list[dict[str, Any]] = []
    for r in plan.routers:
        daemons = {n: bool((p := st.proc(r.site, n)) and p.alive()) for n in (*frr.DAEMONS, "sshd")}
        anchor = st.proc(r.site, "anchor")
        router_down = any(f["site"] == r.site and f["target"] == "router" for f in faults)
        impaired = [{"site": r.site, "target": "link", "link": k.split(":")[1], "state": "impaired", **v}
                    for k, v in st.impair.get("links", {}).items() if k.split(":")[0] == r.site]
        nodes.append({
            "site": r.site, "name": r.name, "hostname": r.hostname, "role": "router", "namespace": r.namespace,
            "mgmt_address": r.mgmt_address,
            "up": bool(anchor and anchor.alive()) and not router_down and all(daemons.values()),
            "daemons": daemons, "faults": [f for f in faults if f["site"] == r.site] + impaired,
        })
    for h in plan.hosts:
        daemons = {"sshd": bool((p := st.proc(h.hostname, "sshd")) and p.alive())}
        host_faults = [f for f in faults if f["site"] == h.hostname]
        nodes.append({
            "site": h.site, "name": h.hostname, "hostname": h.hostname, "role": "host", "device_role": h.role,
            "namespace": h.namespace, "mgmt_address": h.mgmt_address, "address": h.address,
            "up": all(daemons.values()) and not any(f["target"] == "router" for f in host_faults),
            "daemons": daemons, "faults": host_faults,
        })
    for ns, site in ((ISP_NS, "isp"), (TSLCD_NS, "tslcd")):
        nodes.append({"site": site, "role": "cloud", "namespace": ns, "mgmt_address": None,
                      "up": ns in have_ns, "daemons": {}})
    wire = st.proc(impair.WIRE_NODE, impair.WIRE_PROC)
    if wire is not None and st.impair.get("spliced"):
        nodes.append({"site": "wire", "role": "link-emulator", "namespace": impair.WIRE_NS, "mgmt_address": None,
                      "up": wire.alive(), "daemons": {"forwarder": wire.alive()}})
    if plan.services:
        daemons = {n: bool((p := st.proc(services.NODE, n)) and p.alive()) for n in services.SERVICES}
        nodes.append({"site": services.NODE, "role": "services", "namespace": plan.services.namespace,
                      "mgmt_address": None, "up": plan.services.namespace in have_ns and all(daemons.values()),
                      "daemons": daemons, "addresses": plan.services.addresses})
    return {"running": st.status == "running" and st.is_live(), "profile": plan.profile,
            "inventory": plan.inventory, "state": str(st.path), "noc_address": plan.noc_address,
            "started_at": st.started_at, "timings": st.timings, "faults": faults, "nodes": nodes,
            "link_emulation": {"backend": st.impair.get("backend"), "profile": st.impair.get("profile"),
                               "impaired_links": len(st.impair.get("links", {})),
                               "spliced_links": len(st.impair.get("spliced", []))}}


# --- exec --------------------------------------------------------------------------------------------
def exec_argv(target: str, state_root: Path | None = None) -> list[str]:
    """The prefix that runs a command in a lab node: a router (id, hostname, slug), isp, tslcd or svc."""
    st = running(state_root)
    assert st.plan is not None
    clouds = {"isp": ISP_NS, ISP_NS: ISP_NS, "tslcd": TSLCD_NS, TSLCD_NS: TSLCD_NS}
    if st.plan.services:
        clouds.update({"svc": st.plan.services.namespace, st.plan.services.namespace: st.plan.services.namespace})
    if target in clouds:
        return ["ip", "netns", "exec", clouds[target]]
    r = st.plan.router(target)
    if r is not None:
        return router.enter_argv(st, r)
    h = st.plan.host(target)
    if h is not None:
        return host.enter_argv(st, h)
    known = ", ".join(x.site for x in st.plan.routers[:8])
    raise LabError(f"{target!r} is not a node of the running lab: use a site id ({known}, …), a router or host "
                   "hostname (rt-…, pc-…, srv-…), isp, tslcd or svc")


__all__ = ["current", "down", "exec_argv", "running", "running_sites", "status", "up"]
