"""Link impairments: delay, jitter, loss and a rate limit on the lab's Internet and TSLCD links.

Two backends, chosen once per lab by probing the kernel:
- `netem`: `tc qdisc … netem delay/loss/rate` on both ends of the link's veth (where the kernel has sch_netem);
- `forwarder`: the kernel has no netem (this machine): the rate is a `tbf` qdisc on both ends, and delay, jitter
  and loss come from the userspace link emulator (`conftool.lab.wire`): the link is spliced through two ports of
  the wire namespace `lt-wire`, and one forwarder process serves every spliced link. An unimpaired link (or one
  with only a rate) stays a plain veth.

Splicing keeps the telco side's name, address and MAC, so the router, its ARP cache and its routes see no change.
The router's end sees only what a circuit swap shows it: a carrier blip (moving a veth end to another namespace
drops its peer's carrier for a few milliseconds). The router's own interface is never set down and up: the
kernel deletes an interface's IPv4 routes on an administrative down WITHOUT a netlink notification, so when the
down and the up reach zebra together it sees no change, keeps believing its static routes are installed, and
the kernel stays without them (`10.11.0.0/16 via tslcd0` lost until a redeploy). A carrier blip only marks the
kernel's routes `linkdown` (routes are installed without nexthop objects, `no zebra nexthop kernel enable`), so
nothing is lost whether zebra sees the blip or not.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import zlib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import yaml

from conftool.lab.errors import LabError
from conftool.lab.netns import existing_namespaces, ip_batch, run
from conftool.lab.plan import TSLCD_NS, LabPlan, LinkPlan, RouterPlan
from conftool.lab.procs import Recorder, stop, wait_for
from conftool.lab.state import LabState

logger = logging.getLogger(__name__)

WIRE_NS = "lt-wire"
WIRE_NODE, WIRE_PROC = "wire", "forwarder"
KINDS = ("internet", "dedicated")
PROFILE_DIR = Path(__file__).parent
DEFAULT_PROFILE = "rural"
ACK_TIMEOUT = 10.0
PARALLEL = 8


@dataclass
class Params:
    """What one link gets, the same in both directions: delay and jitter per direction, loss per direction."""

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss_pct: float = 0.0
    rate_mbit: float | None = None

    @property
    def needs_emulator(self) -> bool:
        return bool(self.delay_ms or self.jitter_ms or self.loss_pct)

    @property
    def empty(self) -> bool:
        return not self.needs_emulator and not self.rate_mbit


# --- profiles ----------------------------------------------------------------------------------------
def profile_path(name: str) -> Path:
    """A profile name (`rural` → conftool/lab/impair-rural.yaml) or a path to a YAML file."""
    p = Path(name)
    if p.suffix in (".yaml", ".yml") or "/" in name:
        return p
    return PROFILE_DIR / f"impair-{name}.yaml"


def load_profile(name: str) -> dict[str, Any]:
    """Read and check an impairment profile; a bad file is a LabError naming the file and field."""
    path = profile_path(name)
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        known = sorted(p.stem.removeprefix("impair-") for p in PROFILE_DIR.glob("impair-*.yaml"))
        raise LabError(f"impairment profile {name!r} not found ({path}): use one of {', '.join(known)} "
                       "or a path to a YAML file") from None
    except (OSError, yaml.YAMLError) as exc:
        raise LabError(f"impairment profile {path} is unreadable: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("links"), dict):
        raise LabError(f"impairment profile {path}: needs a `links:` mapping (kind → level → values)")
    for kind, levels in doc["links"].items():
        if kind not in KINDS or not isinstance(levels, dict):
            raise LabError(f"impairment profile {path}: links.{kind}: kinds are {', '.join(KINDS)}, each a "
                           "mapping of level → values")
        for level, v in levels.items():
            where = f"impairment profile {path}: links.{kind}.{level}"
            if not isinstance(v, dict):
                raise LabError(f"{where}: expected rtt_ms, jitter_ms, loss_pct")
            rtt = v.get("rtt_ms", 0)
            rng = rtt if isinstance(rtt, list) else [rtt, rtt]
            if len(rng) != 2 or not all(isinstance(x, int | float) and x >= 0 for x in rng) or rng[0] > rng[1]:
                raise LabError(f"{where}.rtt_ms: give a number or [min, max] in ms, min ≤ max")
            for key, top in (("jitter_ms", 10_000), ("loss_pct", 100)):
                x = v.get(key, 0)
                if not isinstance(x, int | float) or not 0 <= x <= top:
                    raise LabError(f"{where}.{key}: must be a number between 0 and {top}")
    rate = doc.get("rate", "inventory")
    if not (rate in ("inventory", "none", None) or (isinstance(rate, int | float) and rate > 0)):
        raise LabError(f"impairment profile {path}: rate must be `inventory`, `none` or Mbit/s > 0")
    doc["name"] = name
    return doc


def profile_params(profile: dict[str, Any], r: RouterPlan, lk: LinkPlan) -> Params:
    """The values a profile gives one link: a fixed point of its RTT range, chosen from the site id."""
    v = profile["links"].get(lk.kind, {}).get(r.level)
    rate_spec = profile.get("rate", "inventory")
    rate = lk.bandwidth_mbps if rate_spec == "inventory" else (None if rate_spec in ("none", None) else rate_spec)
    if v is None:
        return Params(rate_mbit=rate)
    rtt = v.get("rtt_ms", 0)
    lo, hi = (rtt if isinstance(rtt, list) else [rtt, rtt])
    frac = (zlib.crc32(f"{r.site}:{lk.kind}".encode()) % 1000) / 999
    return Params(delay_ms=round((lo + (hi - lo) * frac) / 2, 2), jitter_ms=float(v.get("jitter_ms", 0)),
                  loss_pct=float(v.get("loss_pct", 0)), rate_mbit=rate)


# --- backend -----------------------------------------------------------------------------------------
def probe_netem(namespace: str) -> bool:
    """Whether this kernel has sch_netem: try it on the loopback of one of the lab's own namespaces."""
    cp = run(["tc", "-n", namespace, "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"], check=False)
    if cp.returncode != 0:
        return False
    run(["tc", "-n", namespace, "qdisc", "del", "dev", "lo", "root"], check=False)
    return True


def wire_names(lk: LinkPlan) -> tuple[str, str]:
    """The two wire ports of a spliced link: router side (the original telco end, moved) and telco side."""
    assert lk.cloud_if is not None
    return "w" + lk.cloud_if, "v" + lk.cloud_if


def tbf_line(ifname: str, rate: float | None) -> str:
    if not rate:
        return f"qdisc del dev {ifname} root"
    burst = max(int(rate * 1e6 / 8 / 250), 16_000)  # 4 ms of traffic, at least ten full frames
    return f"qdisc replace dev {ifname} root tbf rate {rate:g}mbit burst {burst} latency 100ms"


def netem_line(ifname: str, p: Params) -> str:
    if p.empty:
        return f"qdisc del dev {ifname} root"
    spec = f"delay {p.delay_ms:g}ms {p.jitter_ms:g}ms" if p.delay_ms or p.jitter_ms else ""
    spec += f" loss {p.loss_pct:g}%" if p.loss_pct else ""
    spec += f" rate {p.rate_mbit:g}mbit" if p.rate_mbit else ""
    return f"qdisc replace dev {ifname} root netem {spec.strip()}"


def tc_batch(ns: str, lines: list[str]) -> None:
    if lines:
        run(["tc", "-n", ns, "-force", "-batch", "-"], input="\n".join(lines) + "\n", check=False)


class Emulator:
    """Applies link parameters to a running lab and records them in its state (the caller holds the lab lock)."""

    def __init__(self, rec: Recorder, lab_dir: Path) -> None:
        self.rec = rec
        self.st: LabState = rec.state
        assert self.st.plan is not None
        self.plan: LabPlan = self.st.plan
        self.dir = lab_dir / "wire"
        self.links: dict[str, dict[str, Any]] = self.st.impair.setdefault("links", {})
        self.spliced: list[str] = self.st.impair.setdefault("spliced", [])

    @property
    def backend(self) -> str:
        b = self.st.impair.get("backend")
        if b is None:
            b = "netem" if probe_netem(self.plan.routers[0].namespace) else "forwarder"
            self.st.impair["backend"] = b
        return str(b)

    # --- public ------------------------------------------------------------------------------------
    def apply(self, items: Iterable[tuple[RouterPlan, LinkPlan, Params]]) -> None:
        """Give each link its parameters (empty Params = plain link again)."""
        todo = list(items)
        for r, lk, _ in todo:
            if lk.kind not in KINDS or not (lk.cloud_ns and lk.cloud_if):
                raise LabError(f"site {r.site}: only internet and dedicated links can be impaired, not {lk.kind}")
        if self.backend == "netem":
            self._apply_netem(todo)
        else:
            self._apply_forwarder(todo)
        for r, lk, p in todo:
            key = f"{r.site}:{lk.kind}"
            if p.empty:
                self.links.pop(key, None)
            else:
                self.links[key] = asdict(p)
        self.rec.save()

    # --- netem ---------------------------------------------------------------------------------------
    def _apply_netem(self, todo: list[tuple[RouterPlan, LinkPlan, Params]]) -> None:
        per_ns: dict[str, list[str]] = {}
        for r, lk, p in todo:
            assert lk.cloud_ns and lk.cloud_if
            per_ns.setdefault(r.namespace, []).append(netem_line(lk.interface, p))
            per_ns.setdefault(lk.cloud_ns, []).append(netem_line(lk.cloud_if, p))
        self._tc_all(per_ns)

    def _tc_all(self, per_ns: dict[str, list[str]]) -> None:
        with ThreadPoolExecutor(PARALLEL) as pool:
            list(pool.map(lambda item: tc_batch(*item), per_ns.items()))

    # --- forwarder -----------------------------------------------------------------------------------
    def _apply_forwarder(self, todo: list[tuple[RouterPlan, LinkPlan, Params]]) -> None:
        to_splice = [(r, lk) for r, lk, p in todo if p.needs_emulator and self._key(r, lk) not in self.spliced]
        to_unsplice = [(r, lk) for r, lk, p in todo if not p.needs_emulator and self._key(r, lk) in self.spliced]
        if to_splice:
            self._ensure_wire_ns()
            self._splice(to_splice)
        if to_unsplice:
            self._unsplice(to_unsplice)
        per_ns: dict[str, list[str]] = {}
        for r, lk, p in todo:
            assert lk.cloud_ns and lk.cloud_if
            per_ns.setdefault(r.namespace, []).append(tbf_line(lk.interface, p.rate_mbit))
            per_ns.setdefault(lk.cloud_ns, []).append(tbf_line(lk.cloud_if, p.rate_mbit))
        self._tc_all(per_ns)
        params = {self._key(r, lk): p for r, lk, p in todo}
        self._write_config(params)

    @staticmethod
    def _key(r: RouterPlan, lk: LinkPlan) -> str:
        return f"{r.site}:{lk.kind}"

    def _ensure_wire_ns(self) -> None:
        if WIRE_NS in self.st.namespaces:
            return
        if WIRE_NS in existing_namespaces():
            raise LabError(f"network namespace {WIRE_NS} already exists and is not this lab's: remove it "
                           f"(`ip netns del {WIRE_NS}`)")
        self.st.namespaces.append(WIRE_NS)  # recorded before it exists, so `down` removes it
        self.rec.save()
        ip_batch([f"netns add {WIRE_NS}"])
        run(["ip", "netns", "exec", WIRE_NS, "sh", "-c",
             "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6; "
             "echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6"])
        ip_batch(["link set lo up"], WIRE_NS)

    def _cloud_restore(self, r: RouterPlan, lk: LinkPlan) -> list[str]:
        """Address, state and routes of the telco end, lost when the interface changed namespace."""
        assert lk.cloud_if and lk.gateway
        plen = IPv4Network(lk.prefix).prefixlen
        lines = [f"addr add {lk.gateway}/{plen} dev {lk.cloud_if}", f"link set {lk.cloud_if} up"]
        lan = r.link("lan")
        if lk.cloud_ns == TSLCD_NS and lan is not None and lk.address:
            lines.append(f"route replace {lan.prefix} via {lk.address} dev {lk.cloud_if}")
        return lines

    def _offloads_off(self, pairs: list[tuple[str, str]]) -> None:
        """The emulator copies frames as they are: checksums must be complete and segments MTU-sized."""
        def one(item: tuple[str, str]) -> None:
            ns, ifname = item
            run(["ip", "netns", "exec", ns, "ethtool", "-K", ifname, "tx", "off", "tso", "off", "gso", "off",
                 "gro", "off"], check=False)
        with ThreadPoolExecutor(PARALLEL) as pool:
            list(pool.map(one, pairs))

    def _splice(self, links: list[tuple[RouterPlan, LinkPlan]]) -> None:
        per_cloud: dict[str, list[str]] = {}
        wire: list[str] = []
        macs = self._macs(links)
        for r, lk in links:
            assert lk.cloud_ns and lk.cloud_if
            a, b = wire_names(lk)
            self.spliced.append(self._key(r, lk))
            per_cloud.setdefault(lk.cloud_ns, []).extend([
                f"link set {lk.cloud_if} netns {WIRE_NS} name {a}",
                f"link add {lk.cloud_if} address {macs[lk.cloud_if]} type veth peer name {b} netns {WIRE_NS}",
                *self._cloud_restore(r, lk)])
            wire += [f"link set {a} up", f"link set {b} up"]
        self.rec.save()
        for ns, lines in per_cloud.items():
            ip_batch(lines, ns)
        ip_batch(wire, WIRE_NS)
        ends = [(r.namespace, lk.interface) for r, lk in links] + [(str(lk.cloud_ns), str(lk.cloud_if))
                                                                   for _, lk in links]
        self._offloads_off(ends)

    def _macs(self, links: list[tuple[RouterPlan, LinkPlan]]) -> dict[str, str]:
        out: dict[str, str] = {}
        for ns in {str(lk.cloud_ns) for _, lk in links}:
            cp = run(["ip", "-n", ns, "-j", "link", "show"])
            out.update({str(e["ifname"]): str(e.get("address", "")) for e in json.loads(cp.stdout or "[]")})
        missing = [str(lk.cloud_if) for _, lk in links if not out.get(str(lk.cloud_if))]
        if missing:
            raise LabError(f"telco side interface(s) {', '.join(missing[:5])} are missing: run `conftool lab down` "
                           "and `conftool lab up`")
        return out

    def _unsplice(self, links: list[tuple[RouterPlan, LinkPlan]]) -> None:
        wire: list[str] = []
        per_cloud: dict[str, list[str]] = {}
        for r, lk in links:
            assert lk.cloud_ns and lk.cloud_if
            a, b = wire_names(lk)
            wire += [f"link del {b}", f"link set {a} netns {lk.cloud_ns} name {lk.cloud_if}"]
            per_cloud.setdefault(lk.cloud_ns, []).extend(self._cloud_restore(r, lk))
        ip_batch(wire, WIRE_NS, force=True)
        for ns, lines in per_cloud.items():
            ip_batch(lines, ns, force=True)
        for r, lk in links:
            self.spliced.remove(self._key(r, lk))
        self.rec.save()

    def _write_config(self, changed: dict[str, Params]) -> None:
        """Rewrite the forwarder's config (every spliced link) and make it take it; start it when needed."""
        cfg = self.dir / "links.json"
        current: dict[str, dict[str, Any]] = dict(self.links)
        current.update({k: asdict(p) for k, p in changed.items()})
        entries = []
        for key in self.spliced:
            site, kind = key.split(":")
            r = self.plan.router(site)
            lk = r.link(kind) if r else None
            if lk is None:
                continue
            a, b = wire_names(lk)
            p = {k: v for k, v in current.get(key, {}).items() if k in ("delay_ms", "jitter_ms", "loss_pct")}
            entries.append({"key": key, "a": a, "b": b, "a_to_b": p, "b_to_a": p})
        gen = int(self.st.impair.get("generation", 0)) + 1
        self.st.impair["generation"] = gen
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = cfg.with_suffix(".tmp")
        tmp.write_text(json.dumps({"generation": gen, "links": entries}, indent=1))
        os.replace(tmp, cfg)
        proc = self.st.proc(WIRE_NODE, WIRE_PROC)
        if not entries:
            if proc is not None and proc.alive():
                stop([proc])
            return
        if proc is None or not proc.alive():
            proc = self.rec.spawn(["ip", "netns", "exec", WIRE_NS, sys.executable, "-m", "conftool.lab.wire",
                                   "--config", str(cfg)], self.dir / "wire.log", WIRE_PROC, WIRE_NODE)
        else:
            os.kill(proc.pid, signal.SIGHUP)
        wait_for(_acked(cfg.with_suffix(".ack"), gen), ACK_TIMEOUT, "the link emulator taking its new config",
                 self.dir / "wire.log")


def _acked(ack: Path, gen: int) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return int(json.loads(ack.read_text()).get("generation", -1)) >= gen
        except (OSError, ValueError):
            return False
    return check


def counters(lab_dir: Path) -> dict[str, Any]:
    """The forwarder's last reported per-port counters (rx, tx, lost, errors)."""
    try:
        return dict(json.loads((lab_dir / "wire" / "links.ack").read_text()))
    except (OSError, ValueError):
        return {}
