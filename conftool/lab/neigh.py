"""The kernel's neighbour (ARP) table must hold every lab neighbour, and the machine gets its own size back.

Linux keeps ONE neighbour table for all network namespaces, capped by ``net.ipv4.neigh.default.gc_thresh3``
(1024 by default; settable only in the root namespace). The full Điện Biên lab needs about 1,100 entries (each of
140 routers has management, LAN, Internet and TSLCD neighbours, plus 130 hosts): past the cap the kernel logs
"neighbor table overflow" and the LAST sites silently lose replies and SSH connections — the audit once reported
~150 false link failures on a clean lab because of it. So `lab up` raises the caps when (and only when) the plan
needs more than the machine allows, records the old values in the lab state, and `lab down` puts them back
(DESIGN §4: the lab leaves the machine as it found it).
"""

from __future__ import annotations

import logging
from pathlib import Path

logger = logging.getLogger(__name__)

SYSCTL_DIR = Path("/proc/sys/net/ipv4/neigh/default")
ENTRIES_PER_NODE = 64
"""Headroom per router or host: a handful of neighbours each, times the kernel's need for slack below the cap
(garbage collection starts at gc_thresh2 and entries linger while stale)."""


def wanted(nodes: int) -> dict[str, int]:
    """The caps a lab of ``nodes`` routers and hosts needs: gc_thresh3 (hard cap) and gc_thresh2 (soft cap)."""
    hard = nodes * ENTRIES_PER_NODE
    return {"gc_thresh3": hard, "gc_thresh2": hard // 2}


def read(sysctl_dir: Path = SYSCTL_DIR) -> dict[str, int]:
    return {name: int((sysctl_dir / name).read_text()) for name in ("gc_thresh2", "gc_thresh3")}


def raise_for(nodes: int, sysctl_dir: Path = SYSCTL_DIR) -> dict[str, int]:
    """Raise the caps that are too small for ``nodes``; returns the OLD values of what was changed (else {}).

    Order matters: the kernel keeps gc_thresh2 ≤ gc_thresh3 meaningful, so the hard cap goes up first.
    """
    current = read(sysctl_dir)
    changed: dict[str, int] = {}
    for name in ("gc_thresh3", "gc_thresh2"):
        want = wanted(nodes)[name]
        if current[name] < want:
            (sysctl_dir / name).write_text(f"{want}\n")
            changed[name] = current[name]
    if changed:
        logger.info("kernel neighbour table caps raised for %d lab nodes (were %s)", nodes, changed)
    return changed


def restore(old: dict[str, int], sysctl_dir: Path = SYSCTL_DIR) -> None:
    """Put back what :func:`raise_for` changed (soft cap first, so it never exceeds the hard cap meanwhile)."""
    for name in ("gc_thresh2", "gc_thresh3"):
        if name in old:
            (sysctl_dir / name).write_text(f"{old[name]}\n")
