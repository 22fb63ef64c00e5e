"""Run a device operation over many devices: a bounded pool, canaries, progress; one device never stops others."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conftool.devices.backup import BackupRepo
from conftool.devices.deploy import DeployOptions, DeployResult, DeviceDeploy
from conftool.devices.normalize import unified_diff
from conftool.devices.session import DeviceError, Target, connect, running_config
from conftool.inventory import Inventory
from conftool.render.engine import Renderer

logger = logging.getLogger(__name__)

DEFAULT_WORKERS = 32  # 140 sites in ~5 waves; SSH setup dominates, CPU stays low
Progress = Callable[[DeployResult], None]


def targets(selection: Inventory) -> list[Target]:
    """Routers of the selected sites (hosts are Ansible's job: `conftool play`)."""
    return [Target(s, d) for s, d in selection.devices() if d.is_router]


def backup_repo(state: Path) -> BackupRepo:
    return BackupRepo(state / "backups")


def run_dir(state: Path, what: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    d = state / "logs" / what / stamp
    d.mkdir(parents=True, exist_ok=True)
    return d


def _pool(items: Sequence[Target], fn: Callable[[Target], DeployResult], workers: int,
          progress: Progress | None) -> list[DeployResult]:
    out: list[DeployResult] = []
    if not items:
        return out
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(items)))) as ex:
        futs = {ex.submit(fn, t): t for t in items}
        for fut in as_completed(futs):
            t = futs[fut]
            try:
                res = fut.result()
            except Exception as exc:
                logger.exception("%s: unexpected error", t.name)
                res = DeployResult(t.site.id, t.name, "failed", f"internal error: {type(exc).__name__}: {exc}",
                                   error=str(exc))
            out.append(res)
            if progress:
                progress(res)
    order = {t.name: i for i, t in enumerate(items)}
    return sorted(out, key=lambda r: order.get(r.device, 0))


def deploy(inv: Inventory, selection: Inventory, opts: DeployOptions, *, workers: int = DEFAULT_WORKERS,
           canary: int = 0, progress: Progress | None = None) -> list[DeployResult]:
    """Deploy every router of ``selection``; routes are rendered from the whole province ``inv``."""
    renderer = Renderer(inv)
    results: list[DeployResult] = []
    work: list[tuple[Target, str]] = []
    for t in targets(selection):
        skip = renderer.skip_reason(t.device)
        if skip is not None:
            status = "unmanaged" if skip[0] == "unmanaged" else "failed"
            results.append(DeployResult(t.site.id, t.name, status, skip[1]))
            continue
        try:
            work.append((t, renderer.render_config(t.site, t.device)))
        except Exception as exc:
            results.append(DeployResult(t.site.id, t.name, "failed", f"render failed: {exc}", error=str(exc)))
    for r in results:
        if progress:
            progress(r)
    intended = {t.name: cfg for t, cfg in work}
    items = [t for t, _ in work]

    def one(t: Target) -> DeployResult:
        return DeviceDeploy(inv, t, intended[t.name], opts).run()

    bad = {"failed", "rolled_back", "unreachable"}
    if canary > 0 and len(items) > canary:
        first = _pool(items[:canary], one, workers, progress)
        results += first
        if any(r.status in bad for r in first):
            for t in items[canary:]:
                r = DeployResult(t.site.id, t.name, "failed", "not attempted: the canary stage failed")
                results.append(r)
                if progress:
                    progress(r)
            _commit(opts, results)
            return results
        items = items[canary:]
    results += _pool(items, one, workers, progress)
    _commit(opts, results)
    return results


def _commit(opts: DeployOptions, results: list[DeployResult]) -> None:
    if opts.backups is not None:
        opts.backups.commit([r.site for r in results], "pre-deploy backup" if not opts.dry_run else "backup")


def summary(results: Sequence[DeployResult]) -> dict[str, int]:
    c = Counter(r.status for r in results)
    keys = ("changed", "unchanged", "rolled_back", "failed", "unreachable", "unmanaged")
    return {"total": len(results), **{k: c.get(k, 0) for k in keys}}


def fetch_running(inv: Inventory, selection: Inventory, *, workers: int = DEFAULT_WORKERS,
                  log_dir: Path | None = None, progress: Progress | None = None,
                  ) -> tuple[list[DeployResult], dict[str, str]]:
    """Running configs of the selected routers (for backup and diff); failures are results, not exceptions."""
    configs: dict[str, str] = {}

    def one(t: Target) -> DeployResult:
        if not t.device.managed:
            return DeployResult(t.site.id, t.name, "unmanaged", "managed: false (telco-owned)")
        try:
            conn = connect(inv, t, (log_dir / f"{t.name}.log") if log_dir else None)
        except DeviceError as exc:
            return DeployResult(t.site.id, t.name, "unreachable", str(exc), error=str(exc))
        try:
            configs[t.name] = running_config(conn, t.device.platform)
        except Exception as exc:
            return DeployResult(t.site.id, t.name, "failed", f"cannot read config: {type(exc).__name__}")
        finally:
            conn.disconnect()
        return DeployResult(t.site.id, t.name, "ok", "")

    return _pool(targets(selection), one, workers, progress), configs


def diffs(inv: Inventory, selection: Inventory, running: dict[str, str]) -> dict[str, str]:
    """hostname -> normalised unified diff (intended vs running); empty string when equal."""
    renderer = Renderer(inv)
    out: dict[str, str] = {}
    for s, d in selection.devices():
        if d.hostname in running and renderer.skip_reason(d) is None:
            out[d.hostname] = unified_diff(renderer.render_config(s, d), running[d.hostname], d.platform, d.hostname)
    return out


def as_doc(results: Sequence[DeployResult], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"summary": {**summary(results), **(extra or {})}, "items": [r.as_item() for r in results]}
