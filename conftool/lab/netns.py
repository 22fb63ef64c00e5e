"""Namespaces and links: built with a few `ip -batch` runs so that 140 routers come up in seconds."""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from ipaddress import IPv4Network, ip_network
from pathlib import Path

from conftool.lab.errors import LabError
from conftool.lab.plan import (
    HOST_IF,
    HOST_MGMT_IF,
    ISP_NS,
    MGMT_BRIDGE,
    MGMT_IF,
    SVC_IF,
    SVC_PORT,
    TSLCD_NS,
    HostPlan,
    LabPlan,
    RouterPlan,
    host_port,
)

logger = logging.getLogger(__name__)

NETNS_DIR = Path("/run/netns")
PARALLEL = 8
LAN_SWITCH_PORT, LAN_SWITCH = "lp-sw", "sw0"


def run(cmd: Sequence[str], *, input: str | None = None, check: bool = True,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a tool; a failure becomes a LabError that shows the command and what the tool said."""
    logger.debug("run: %s", " ".join(cmd))
    try:
        cp = subprocess.run(list(cmd), input=input, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise LabError(f"{cmd[0]} is not installed: run scripts/install.sh") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"{' '.join(cmd[:4])} … did not finish within {timeout:.0f} s") from None
    if check and cp.returncode != 0:
        raise LabError(f"{' '.join(cmd[:6])} failed: {(cp.stderr or cp.stdout).strip()[:800]}")
    return cp


def ip_batch(lines: Iterable[str], netns: str | None = None, *, force: bool = False) -> None:
    """Feed many `ip` commands to one process (optionally inside a namespace)."""
    text = "\n".join(lines) + "\n"
    if not text.strip():
        return
    cmd = ["ip"] + (["-n", netns] if netns else []) + (["-force"] if force else []) + ["-batch", "-"]
    run(cmd, input=text, check=not force)


def existing_namespaces() -> set[str]:
    cp = run(["ip", "-j", "netns", "list"], check=False)
    if cp.returncode != 0:
        raise LabError(f"`ip netns` does not work here ({cp.stderr.strip()}): the lab needs iproute2 "
                       "with network-namespace support and root")
    try:
        return {str(e["name"]) for e in json.loads(cp.stdout or "[]")}
    except (ValueError, KeyError, TypeError):
        return {line.split()[0] for line in cp.stdout.splitlines() if line.strip()}


def root_links() -> set[str]:
    cp = run(["ip", "-j", "link", "show"])
    return {str(e["ifname"]) for e in json.loads(cp.stdout or "[]")}


def root_routes() -> list[IPv4Network]:
    """IPv4 routes of the root namespace (all tables), without default and local/broadcast entries."""
    cp = run(["ip", "-4", "-j", "route", "show", "table", "all"])
    nets: list[IPv4Network] = []
    for r in json.loads(cp.stdout or "[]"):
        dst = str(r.get("dst", ""))
        if r.get("type") in ("local", "broadcast", "multicast") or dst in ("", "default", "0.0.0.0/0"):
            continue
        try:
            net = ip_network(dst if "/" in dst else dst + "/32", strict=False)
        except ValueError:
            continue
        if isinstance(net, IPv4Network):
            nets.append(net)
    return nets


def overlaps(wanted: Iterable[IPv4Network], routes: Iterable[IPv4Network]) -> list[tuple[IPv4Network, IPv4Network]]:
    """Pairs (lab prefix, existing route) that overlap; pure so it is tested with case tables."""
    routes = list(routes)
    return [(w, r) for w in wanted for r in routes if w.overlaps(r)]


def ns_inode(name: str) -> int | None:
    try:
        return (NETNS_DIR / name).stat().st_ino
    except OSError:
        return None


def pids_in_netns(names: Iterable[str]) -> list[int]:
    """Every process living in one of these network namespaces (sessions, pings, daemons alike)."""
    inodes = {i for i in (ns_inode(n) for n in names) if i is not None}
    if not inodes:
        return []
    found = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            if (p / "ns" / "net").stat().st_ino in inodes:
                found.append(int(p.name))
        except OSError:
            continue
    return found


def netns_dir_mounted() -> bool:
    """Whether /run/netns is a mount point (iproute2 makes it one with the first `ip netns add`)."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return False
    return any(len(f) > 4 and f[4] == str(NETNS_DIR) for f in (line.split() for line in lines))


def release_netns_dir(unmount: bool, remove: bool) -> None:
    """Undo what the first `ip netns add` did to /run/netns, but only when no namespace is left in it."""
    if not NETNS_DIR.is_dir() or any(NETNS_DIR.iterdir()):
        return
    if unmount and netns_dir_mounted():
        run(["umount", str(NETNS_DIR)], check=False)
    if remove and not netns_dir_mounted():
        with contextlib.suppress(OSError):
            NETNS_DIR.rmdir()


# --- building ----------------------------------------------------------------------------------------
def root_batch(plan: LabPlan) -> list[str]:
    """Namespaces, the management bridge and every veth pair, created from the root namespace."""
    lines = [f"netns add {ns}" for ns in plan.namespaces]
    lines += [f"link add {MGMT_BRIDGE} type bridge", f"addr add {plan.noc_address} dev {MGMT_BRIDGE}",
              f"link set {MGMT_BRIDGE} up"]
    for r in plan.routers:
        lines.append(f"link add {MGMT_IF} netns {r.namespace} type veth peer name {r.root_if}")
        lines.append(f"link set {r.root_if} master {MGMT_BRIDGE} up")
        for lk in r.links:
            if lk.cloud_ns and lk.cloud_if:
                lines.append(f"link add {lk.interface} netns {r.namespace} type veth "
                             f"peer name {lk.cloud_if} netns {lk.cloud_ns}")
    if plan.services:
        prov = plan.router(plan.services.router_site)
        assert prov is not None
        lines.append(f"link add {SVC_IF} netns {plan.services.namespace} type veth "
                     f"peer name {SVC_PORT} netns {prov.namespace}")
    for h in plan.hosts:
        lines.append(f"link add {HOST_MGMT_IF} netns {h.namespace} type veth peer name {h.root_if}")
        lines.append(f"link set {h.root_if} master {MGMT_BRIDGE} up")
        lines.append(f"link add {HOST_IF} netns {h.namespace} type veth peer name {host_port(plan, h)} "
                     f"netns {h.router_ns}")
    return lines


def host_batch(h: HostPlan) -> list[str]:
    """Inside one host: its LAN address with the site router as default gateway, and its management address."""
    return ["link set lo up", f"addr add {h.address} dev {HOST_IF}", f"link set {HOST_IF} up",
            f"addr add {h.mgmt_address}/{h.mgmt_prefixlen} dev {HOST_MGMT_IF}", f"link set {HOST_MGMT_IF} up",
            f"route add default via {h.gateway} dev {HOST_IF}"]


def router_batch(r: RouterPlan, with_services: bool) -> list[str]:
    """Inside one router: loopback, the lan0 bridge, mgmt address; link addresses come from deploy."""
    lines = ["link set lo up", f"addr add {r.mgmt_address}/{r.mgmt_prefixlen} dev {MGMT_IF}",
             f"link set {MGMT_IF} up"]
    for lk in r.links:
        if lk.kind == "lan":
            # The site's switch: one port stands for the core switch uplink, so the LAN is up (has carrier)
            # like a real site LAN even before hosts (lab part 2) attach to the bridge.
            lines += [f"link add {lk.interface} type bridge", f"link add {LAN_SWITCH_PORT} type veth peer name "
                      f"{LAN_SWITCH}", f"link set {LAN_SWITCH_PORT} master {lk.interface} up",
                      f"link set {LAN_SWITCH} up", f"link set {lk.interface} up"]
            if with_services:
                lines.append(f"link set {SVC_PORT} master {lk.interface} up")
        else:
            lines.append(f"link set {lk.interface} up")
    return lines


def cloud_batches(plan: LabPlan) -> dict[str, list[str]]:
    """The telco side of each link: the ISP knows only the Internet /30s; TSLCD routes each site's LAN."""
    out: dict[str, list[str]] = {ISP_NS: ["link set lo up"], TSLCD_NS: ["link set lo up"]}
    for r in plan.routers:
        for lk in r.links:
            if not (lk.cloud_ns and lk.cloud_if and lk.gateway):
                continue
            plen = IPv4Network(lk.prefix).prefixlen
            out[lk.cloud_ns] += [f"addr add {lk.gateway}/{plen} dev {lk.cloud_if}",
                                 f"link set {lk.cloud_if} up"]
    for r in plan.routers:
        ded, lan = r.link("dedicated"), r.link("lan")
        if ded and lan and ded.address:
            out[TSLCD_NS].append(f"route add {lan.prefix} via {ded.address} dev {ded.cloud_if}")
    if plan.services:
        s = plan.services
        out[s.namespace] = ["link set lo up"] + [f"addr add {a} dev {SVC_IF}" for a in s.addresses] + [
            f"link set {SVC_IF} up", f"route add default via {s.gateway}"]
    return out


def no_forwarding_from(ifname: str) -> None:
    """Never route what arrives on the management bridge out of the machine, even where the machine forwards.

    This is a setting of our own interface in the root namespace; it disappears with the interface.
    """
    Path(f"/proc/sys/net/ipv4/conf/{ifname}/forwarding").write_text("0\n")


def sysctl_in(ns: str, settings: dict[str, str]) -> None:
    script = "; ".join(f"echo {v} > /proc/sys/{k.replace('.', '/')}" for k, v in settings.items())
    run(["ip", "netns", "exec", ns, "sh", "-c", script])


def build_clouds(plan: LabPlan) -> None:
    batches = cloud_batches(plan)
    with ThreadPoolExecutor(PARALLEL) as pool:
        list(pool.map(lambda item: ip_batch(item[1], item[0]), batches.items()))
    for ns in (ISP_NS, TSLCD_NS):
        sysctl_in(ns, {"net.ipv4.ip_forward": "1"})


def build_routers(plan: LabPlan) -> None:
    svc_site = plan.services.router_site if plan.services else None
    ports: dict[str, list[str]] = {}
    for h in plan.hosts:
        ports.setdefault(h.router_ns, []).append(f"link set {host_port(plan, h)} master {h.lan_bridge} up")

    def one(r: RouterPlan) -> None:
        ip_batch(router_batch(r, r.site == svc_site) + ports.get(r.namespace, []), r.namespace)

    with ThreadPoolExecutor(PARALLEL) as pool:
        list(pool.map(one, plan.routers))
        list(pool.map(lambda h: ip_batch(host_batch(h), h.namespace), plan.hosts))


def delete(namespaces: Iterable[str], links: Iterable[str]) -> None:
    """Remove root-namespace links and namespaces; missing ones are fine (half-built labs)."""
    have_links = root_links()
    ip_batch([f"link del {name}" for name in links if name in have_links], force=True)
    have_ns = existing_namespaces()
    ip_batch([f"netns del {ns}" for ns in namespaces if ns in have_ns], force=True)
