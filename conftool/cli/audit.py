"""`conftool audit run|history|diff|rules`: the NOC's daily check of every site and link, with history."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from conftool.audit.errors import AuditError
from conftool.audit.report import failing_by_district, finding_label, summarize
from conftool.audit.results import Finding, RunRecord, Status
from conftool.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    InventoryOpt,
    JsonOpt,
    SiteOpt,
    console,
    emit_json,
    handle_errors,
    load_inventory,
    site_result_doc,
    state_dir,
)
from conftool.inventory import Site

if TYPE_CHECKING:  # the checks registry, the runner and the SQL store load lazily: `conftool deploy` etc.
    from conftool.audit.runner import Auditor  # start ~1 s faster without SQLAlchemy and the audit checks

logger = logging.getLogger(__name__)

app = typer.Typer(help="Kiểm tra mạng: mọi trạm, mọi đường truyền, có lịch sử / Network audit with history.",
                  no_args_is_help=True)

DbOpt = Annotated[str | None, typer.Option("--db", help="SQLAlchemy URL of the store (env LIENTHONG_DB; "
                                                        "default a SQLite file in the state dir)")]
CheckOpt = Annotated[list[str] | None, typer.Option("--check", "-c", help="Checks to run (repeatable or "
                                                                          "comma-separated; default all)")]
RulesOpt = Annotated[list[Path] | None, typer.Option("--rules", help="Extra compliance rule file(s) (YAML)")]
STYLE = {Status.OK: "green", Status.FAIL: "red", Status.ERROR: "magenta", Status.SKIPPED: "dim"}


def _print_failures(run: RunRecord, inv: Any) -> None:
    groups = failing_by_district(run, inv)
    if not groups:
        console.print("[green]Không có trạm nào lỗi / no failing site[/]")
        return
    console.print("[bold]Trạm lỗi theo huyện / failing sites by district[/]")
    for district, sites in groups.items():
        console.print(f"[bold]{escape(district)}[/]", highlight=False)
        for name, fs in sites:
            console.print(f"  • {escape(name)}", highlight=False)
            for f in fs:
                dev = escape(f" [{f.device}]") if f.device else ""
                console.print(f"      [{STYLE[f.status]}]{f.status.value}[/] {escape(finding_label(f))}{dev}: "
                              f"{escape(f.detail)}", highlight=False, soft_wrap=True)


@app.command("run")
@handle_errors
def run_cmd(
    inventory: InventoryOpt = None,
    site: SiteOpt = None,
    check: CheckOpt = None,
    rules: RulesOpt = None,
    db: DbOpt = None,
    direct: Annotated[bool, typer.Option("--direct", help="Audit the real network from this machine "
                                                           "(default: the running lab)")] = False,
    store: Annotated[bool, typer.Option("--store/--no-store", help="Save the run in the history")] = True,
    json_out: JsonOpt = False,
) -> None:
    """Chạy kiểm tra / Run the selected checks over the selected sites (exit 1 when anything failed)."""
    from conftool.audit import registry
    from conftool.audit.rules import load_rules
    from conftool.audit.runner import Auditor, detect_target
    from conftool.audit.store import AuditStore

    inv = load_inventory(inventory)
    checks = registry.get(check)
    rule_list = load_rules(inv.base_dir, rules or [])
    target = detect_target(state_dir(), direct)
    selector = ",".join(site) if site else ""
    if site:
        selection = inv.select(site)
    elif target.mode == "lab":
        lab_ids = [r.site for r in target.plan.routers if r.site in inv]
        selection = inv.select(lab_ids)
        selector = "lab"
        if not json_out:
            console.print(f"Lab đang chạy: kiểm tra {len(lab_ids)} trạm của lab / lab running: auditing its "
                          f"{len(lab_ids)} sites (use --site to choose)", highlight=False)
    else:
        selection = inv
    if target.mode == "direct" and not json_out:
        console.print("[yellow]--direct: SSH và ping đi từ máy này / SSH and probes leave from this machine[/]")
    auditor = Auditor(inv=inv, selection=selection, checks=checks, rules=rule_list, target=target,
                      selector=selector)
    record = auditor.run_sync() if json_out else _run_live(auditor, len(selection.sites))
    if store:
        with AuditStore(db) as st:
            st.save(record)
    summary = summarize(record)
    bad = record.summary()[Status.FAIL.value] + record.summary()[Status.ERROR.value]
    if json_out:
        doc = site_result_doc({**summary.as_dict(), "run": record.id, "checks": record.checks,
                               "wall_s": auditor.timings.get("wall_s")},
                              [f.as_item() for f in record.findings])
        emit_json(doc)
    else:
        _print_failures(record, inv)
        run_id = f"run {record.id}" if record.id is not None else "not stored"
        console.print(f"[bold]{summary.line()}[/]  ({run_id}, {auditor.timings.get('wall_s', 0):g} s)",
                      highlight=False)
    raise typer.Exit(EXIT_FAILED if bad else EXIT_OK)


def _run_live(auditor: Auditor, n: int) -> RunRecord:
    """The rich live view: a progress bar and one line per site that failed, as it finishes."""
    with Progress(SpinnerColumn(), TextColumn("[bold]Kiểm tra / auditing"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[last]}"), TimeElapsedColumn(), console=console,
                  transient=True) as progress:
        task = progress.add_task("audit", total=n, last="")

        def done(site: Site, findings: list[Finding]) -> None:
            bad = [f for f in findings if f.status in (Status.FAIL, Status.ERROR)]
            if bad:
                labels = ", ".join(finding_label(f) for f in bad[:4]) + (" …" if len(bad) > 4 else "")
                progress.console.print(f"[red]✗[/] {escape(site.full_name)} ({site.id}): {escape(labels)}",
                                       highlight=False)
            progress.update(task, advance=1, last=f"{site.id} {'✗' if bad else '✓'}")

        auditor.on_site = done
        return auditor.run_sync()


@app.command("history")
@handle_errors
def history_cmd(
    inventory: InventoryOpt = None,
    site: SiteOpt = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many runs", min=1)] = 20,
    db: DbOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Lịch sử kiểm tra / Stored runs, newest first (with --site: only those sites' findings)."""
    from conftool.audit.store import AuditStore

    ids: list[str] | None = None
    if site:
        ids = load_inventory(inventory).select(site).site_ids()
    with AuditStore(db) as st:
        hist = st.history(ids, limit)
    rows: list[dict[str, Any]] = []
    for rec, fs in hist:
        counts = {s.value: 0 for s in Status}
        for f in fs:
            counts[f.status.value] += 1
        failing = sorted({f"{f.site} {finding_label(f)}" for f in fs if f.status in (Status.FAIL, Status.ERROR)})
        rows.append({"id": rec.id, "started_at": rec.started_at.isoformat(timespec="seconds"),
                     "selector": rec.selector, "checks": rec.checks, **counts, "failing": failing})
    if json_out:
        emit_json({"summary": {"runs": len(rows)}, "items": rows})
        return
    if not rows:
        console.print("Chưa có lần kiểm tra nào / no audit run stored yet")
        return
    t = Table(title="Lịch sử kiểm tra / audit history")
    for col in ("run", "started (UTC)", "sites", "ok", "fail", "error", "skipped", "failing"):
        t.add_column(col, overflow="fold")
    for r in rows:
        shown = ", ".join(r["failing"][:3]) + (f" (+{len(r['failing']) - 3})" if len(r["failing"]) > 3 else "")
        t.add_row(str(r["id"]), r["started_at"], r["selector"] or "all", str(r["ok"]), str(r["fail"]),
                  str(r["error"]), str(r["skipped"]), escape(shown))
    console.print(t)


@app.command("diff")
@handle_errors
def diff_cmd(
    run_a: Annotated[int | None, typer.Argument(help="Older run (default: the one before RUN_B)")] = None,
    run_b: Annotated[int | None, typer.Argument(help="Newer run (default: the latest)")] = None,
    db: DbOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """So sánh hai lần kiểm tra / New failures and recoveries between two runs (exit 1 on new failures)."""
    from conftool.audit.store import AuditStore

    if run_a is not None and run_b is None:
        run_a, run_b = None, run_a  # one argument: compare that run with the one before it
    with AuditStore(db) as st:
        d = st.diff(run_a, run_b)
    groups = (("new_failure", d.new_failures), ("recovery", d.recoveries), ("still_failing", d.still_failing))
    if json_out:
        items = [{**f.as_item(), "change": name} for name, fs in groups for f in fs]
        emit_json(site_result_doc({"old": d.old, "new": d.new, "new_failures": len(d.new_failures),
                                   "recoveries": len(d.recoveries), "still_failing": len(d.still_failing)}, items))
    else:
        console.print(f"[bold]run {d.old} → run {d.new}[/]")
        titles = {"new_failure": "[red]Lỗi mới / new failures[/]", "recovery": "[green]Đã phục hồi / recoveries[/]",
                  "still_failing": "[yellow]Vẫn lỗi / still failing[/]"}
        for name, fs in groups:
            console.print(f"{titles[name]}: {len(fs)}")
            for f in fs:
                dev = escape(f" [{f.device}]") if f.device else ""
                console.print(f"  • {f.site} {escape(finding_label(f))}{dev}: {escape(f.detail)}", highlight=False,
                              soft_wrap=True)
    raise typer.Exit(EXIT_FAILED if d.new_failures else EXIT_OK)


@app.command("rules")
@handle_errors
def rules_cmd(
    inventory: InventoryOpt = None,
    rules: RulesOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Các quy tắc tuân thủ / The compliance rules in force (shipped + inventory + --rules), validated."""
    from conftool.audit.rules import load_rules

    inv = load_inventory(inventory)
    rule_list = load_rules(inv.base_dir, rules or [])
    if json_out:
        emit_json({"summary": {"rules": len(rule_list)},
                   "items": [r.model_dump(exclude_none=True) for r in rule_list]})
        return
    t = Table(title="Quy tắc tuân thủ / compliance rules")
    for col in ("id", "severity", "platforms", "title", "baseline"):
        t.add_column(col, overflow="fold")
    for r in rule_list:
        t.add_row(r.id, r.severity, ", ".join(r.checks), escape(r.title), escape(r.baseline))
    console.print(t)


@app.command("checks")
def checks_cmd() -> None:
    """Các bước kiểm tra có sẵn / The registered checks."""
    from conftool.audit import registry

    for c in registry.get(None):
        plats = ", ".join(sorted(c.platforms)) if c.platforms else "all"
        console.print(f"{c.name:14} severity={c.severity:7} platforms={plats}", highlight=False)


__all__ = ["AuditError", "app"]
