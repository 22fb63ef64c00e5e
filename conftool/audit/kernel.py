"""Packets this machine's own kernel dropped: what makes a probe's loss (or a lost SSH connect) OURS, not the link's.

Why: on the full lab every namespace shares one kernel, and the kernel's ARP table is global (its limit,
`net.ipv4.neigh.default.gc_thresh3`, is 1024 entries by default for ALL namespaces together). The full profile
needs more than that, so new neighbours cannot be created: replies and SSH SYNs vanish without a trace and a
healthy link looked dead (136–242 false `fail` findings per run, 161 on an idle machine). The same goes for the
per-CPU input backlog (`netdev_max_backlog`) when the machine is too busy to run its softirq, and for our own
socket's receive queue. A measurement taken while any of these counters moved is not a verdict on the link:
the audit retries it, and reports `error` naming the counter and the fix when it stays disturbed.

Only counters that a real link fault does NOT move are used: a link that is down makes its neighbour FAILED
and its packets `unresolved_discards`, never `table_fulls`, so a dead link is still graded `fail`.
"""

from __future__ import annotations

from pathlib import Path

ARP_STAT = Path("/proc/net/stat/arp_cache")
SOFTNET_STAT = Path("/proc/net/softnet_stat")

# counter -> (what it means for the measurement, what to do)
WHY: dict[str, tuple[str, str]] = {
    "arp_table_full": (
        "this machine's neighbour (ARP) table was full",
        "raise net.ipv4.neigh.default.gc_thresh3 (and gc_thresh2) above the number of neighbours in use"),
    "backlog_drops": (
        "this machine's kernel dropped packets at its input backlog (CPU too busy for its softirq)",
        "audit again when the machine is less loaded, or raise net.core.netdev_max_backlog"),
    "socket_drops": (
        "the prober's own socket overflowed (the prober got no CPU for too long)",
        "audit again when the machine is less loaded"),
}


def _hex_columns(path: Path, wanted: list[str] | list[int]) -> list[int]:
    """Sum over the per-CPU rows of hex counters; `wanted` are header names (arp_cache) or column indices."""
    try:
        lines = path.read_text().split("\n")
    except OSError:
        return [0] * len(wanted)
    idx: list[int]
    if wanted and isinstance(wanted[0], str):
        header = lines[0].split()
        idx = [header.index(str(w)) if w in header else -1 for w in wanted]
        rows = lines[1:]
    else:
        idx = [int(w) for w in wanted]
        rows = lines
    sums = [0] * len(idx)
    for row in rows:
        cols = row.split()
        for k, i in enumerate(idx):
            if 0 <= i < len(cols):
                sums[k] += int(cols[i], 16)
    return sums


def drop_counters() -> dict[str, int]:
    """This kernel's own-drop counters (cumulative since boot; the ARP table's are global to all namespaces)."""
    (table_fulls,) = _hex_columns(ARP_STAT, ["table_fulls"])
    (dropped,) = _hex_columns(SOFTNET_STAT, [1])  # softnet_stat column 2: packets dropped at the backlog
    return {"arp_table_full": table_fulls, "backlog_drops": dropped}


def moved(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """The counters that grew between two samples, with by how much."""
    return {k: after[k] - before.get(k, 0) for k in after if after[k] > before.get(k, 0)}


def explain(deltas: dict[str, int]) -> str | None:
    """One sentence for a finding: what our machine dropped and how to fix it; None when nothing moved."""
    if not deltas:
        return None
    parts = []
    for k, n in sorted(deltas.items()):
        what, fix = WHY.get(k, (k, "audit again"))
        parts.append(f"{what} ({k} +{n}): {fix}")
    return "; ".join(parts)
