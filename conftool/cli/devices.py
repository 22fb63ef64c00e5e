"""`conftool backup | diff | deploy`: the engineer's core loop against real devices."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from conftool.cli.common import (
    EXIT_FAILED,
    InventoryOpt,
    JsonOpt,
    SiteOpt,
    console,
    emit_json,
    err_console,
    handle_errors,
    load_inventory,
    state_dir,
)
from conftool.devices.deploy import DeployOptions, DeployResult
from conftool.inventory import Inventory

STYLE = {"changed": "yellow", "unchanged": "green", "rolled_back": "magenta", "failed": "red",
         "unreachable": "red", "unmanaged": "dim", "ok": "green"}


def selection(inv: Inventory, site: list[str] | None, quiet: bool) -> Inventory:
    """--site wins; otherwise, while a lab runs, the sites it emulates (DESIGN §9), said in one line."""
    if site:
        return inv.select(site)
    from conftool.lab import running_sites

    lab = running_sites(state_dir())
    if lab:
        if not quiet:
            err_console.print(f"[dim]lab đang chạy / lab running: {len(lab)} sites (use --site to choose)[/]")
        return inv.select(lab)
    return inv


def _progress(total: int, quiet: bool, label: str) -> tuple[Progress | None, object]:
    if quiet or total == 0:
        return None, None
    p = Progress(TextColumn(f"[bold]{label}[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                 TextColumn("{task.fields[last]}"), console=err_console, transient=True)
    return p, p.add_task(label, total=total, last="")


def _table(results: list[DeployResult], title: str) -> Table:
    t = Table(title=title)
    for c in ("site", "device", "status", "detail"):
        t.add_column(c)
    for r in results:
        st = STYLE.get(r.status, "")
        t.add_row(r.site, r.device, f"[{st}]{r.status}[/]", r.detail.splitlines()[0] if r.detail else "")
    return t


def _run_with_progress(n: int, quiet: bool, label: str, fn: object) -> list[DeployResult]:
    prog, task = _progress(n, quiet, label)

    def tick(r: DeployResult) -> None:
        if prog is not None:
            prog.update(task, advance=1, last=f"{r.device}: {r.status}")  # type: ignore[arg-type]

    if prog is None:
        return fn(None)  # type: ignore[operator,no-any-return]
    with prog:
        return fn(tick)  # type: ignore[operator,no-any-return]


@handle_errors
def deploy_cmd(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan and diff, change nothing")] = False,
    apply: Annotated[bool, typer.Option("--apply", help="Apply, verify, write memory; roll back on failure")] = False,
    workers: Annotated[int, typer.Option("--workers", min=1, max=256, help="Devices in parallel")] = 32,
    canary: Annotated[int, typer.Option("--canary", min=0, help="Deploy N sites first; stop if any fails")] = 0,
    confirm_seconds: Annotated[int, typer.Option("--confirm-timeout", min=10, max=900,
                                                 help="Commit-confirm window (s) before the device restores; "
                                                 "IOS rounds it up to whole minutes")] = 45,
    inventory: InventoryOpt = None,
    site: SiteOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Render, plan and push intended configs: per device backup, diff, apply, verify, save or roll back."""
    from conftool.devices import runner
    from conftool.devices.session import preload

    if dry_run == apply:
        err_console.print("choose exactly one of --dry-run or --apply / chọn --dry-run hoặc --apply")
        raise typer.Exit(2)
    preload()
    inv = load_inventory(inventory)
    sel = selection(inv, site, json_out)
    st = state_dir()
    opts = DeployOptions(dry_run=dry_run, confirm_seconds=confirm_seconds, log_dir=runner.run_dir(st, "deploy"),
                         backups=runner.backup_repo(st))
    n = len(runner.targets(sel))
    results = _run_with_progress(n, json_out, "deploy", lambda cb: runner.deploy(
        inv, sel, opts, workers=workers, canary=canary, progress=cb))
    doc = runner.as_doc(results, {"dry_run": dry_run, "session_logs": str(opts.log_dir)})
    if json_out:
        emit_json(doc)
    else:
        console.print(_table(results, "Triển khai / deploy" + (" (dry run)" if dry_run else "")))
        if dry_run:
            for r in results:
                if r.diff:
                    console.rule(r.device)
                    console.print(r.diff, markup=False, highlight=False)
        s = doc["summary"]
        console.print(" · ".join(f"{k} {v}" for k, v in s.items() if isinstance(v, int)))
    if any(r.status in ("failed", "rolled_back", "unreachable") for r in results):
        raise typer.Exit(EXIT_FAILED)


@handle_errors
def backup_cmd(
    workers: Annotated[int, typer.Option("--workers", min=1, max=256)] = 32,
    inventory: InventoryOpt = None,
    site: SiteOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Running configs into the git repository under the state dir (one commit per run)."""
    from conftool.devices import runner

    inv = load_inventory(inventory)
    sel = selection(inv, site, json_out)
    st = state_dir()
    repo = runner.backup_repo(st)
    n = len(runner.targets(sel))
    configs: dict[str, str] = {}

    def work(cb: object) -> list[DeployResult]:
        res, cfgs = runner.fetch_running(inv, sel, progress=cb, workers=workers)  # type: ignore[arg-type]
        configs.update(cfgs)
        return res

    results = _run_with_progress(n, json_out, "backup", work)
    for r in results:
        if r.device in configs:
            repo.write(r.site, r.device, configs[r.device])
    commit = repo.commit([r.site for r in results if r.device in configs])
    failed = sum(r.status in ("failed", "unreachable") for r in results)
    doc = {"summary": {"total": len(results), "ok": sum(r.status == "ok" for r in results), "failed": failed,
                       "commit": commit, "repository": str(repo.path)},
           "items": [r.as_item() | {"kind": "backup"} for r in results]}
    if json_out:
        emit_json(doc)
    else:
        console.print(_table(results, "Sao lưu / backup"))
        console.print(f"{repo.path}: " + (f"commit {commit[:10]}" if commit else "không thay đổi / no change"))
    if failed:
        raise typer.Exit(EXIT_FAILED)


@handle_errors
def diff_cmd(
    workers: Annotated[int, typer.Option("--workers", min=1, max=256)] = 32,
    inventory: InventoryOpt = None,
    site: SiteOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Normalised intended vs running config per device, as a unified diff (exit 1 when any differs)."""
    from conftool.devices import runner

    inv = load_inventory(inventory)
    sel = selection(inv, site, json_out)
    results, running = runner.fetch_running(inv, sel, workers=workers)
    d = runner.diffs(inv, sel, running)
    items = []
    for r in results:
        text = d.get(r.device, "")
        status = r.status if r.status != "ok" else ("changed" if text else "unchanged")
        items.append({"site": r.site, "device": r.device, "kind": "diff", "status": status,
                      "detail": r.detail or ("differs" if text else "as intended"), "diff": text})
    if json_out:
        emit_json({"summary": {"total": len(items), "differ": sum(i["status"] == "changed" for i in items),
                               "unreachable": sum(i["status"] == "unreachable" for i in items)}, "items": items})
    else:
        for i in items:
            if i["diff"]:
                console.rule(f"{i['device']} ({i['site']})")
                console.print(i["diff"], markup=False, highlight=False)
            else:
                console.print(f"{i['device']}: {i['status']} — {i['detail']}")
    if any(i["status"] != "unchanged" for i in items):
        raise typer.Exit(EXIT_FAILED)
