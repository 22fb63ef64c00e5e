"""`conftool audit report|availability|schedule|maintenance`: the audit as the NOC runs it, unattended."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from conftool.audit.errors import AuditError
from conftool.audit.results import RunRecord, Status
from conftool.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
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

if TYPE_CHECKING:
    from conftool.audit.store import AuditStore


def _store(db: str | None) -> AuditStore:
    """The SQL store, imported on use: SQLAlchemy costs ~0.5 s of every `conftool` start otherwise."""
    from conftool.audit.store import AuditStore

    return AuditStore(db)


logger = logging.getLogger(__name__)

app = typer.Typer(help="Báo cáo, độ khả dụng, lịch kiểm tra và cảnh báo / Reports, availability, schedule, alerts.",
                  no_args_is_help=True)
maintenance_app = typer.Typer(help="Khung giờ bảo trì (tắt cảnh báo) / Maintenance windows (silence alerts).",
                              no_args_is_help=True)
app.add_typer(maintenance_app, name="maintenance")

DbOpt = Annotated[str | None, typer.Option("--db", help="SQLAlchemy URL of the store (env LIENTHONG_DB; "
                                                        "default a SQLite file in the state dir)")]


@app.command("report")
@handle_errors
def report_cmd(
    html: Annotated[Path | None, typer.Option("--html", help="Write the self-contained HTML report to FILE")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="md: Markdown for the People's Committee report "
                                                            "(to --output or stdout)")] = "html",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File for --format md")] = None,
    run: Annotated[int | None, typer.Option("--run", help="Stored run id (default: the latest)")] = None,
    trend: Annotated[int, typer.Option("--trend", help="Runs in the trend charts", min=1, max=500)] = 12,
    lang: Annotated[str, typer.Option("--lang", help="vi | en (Markdown; the HTML has a switch)")] = "vi",
    inventory: InventoryOpt = None,
    db: DbOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Báo cáo kiểm tra / The audit report: KPI vs targets, districts, province tree, trends, fixes."""
    from conftool.audit.reporting import data as rdata
    from conftool.audit.reporting import html as rhtml
    from conftool.audit.reporting import markdown as rmd

    if fmt not in ("html", "md"):
        raise AuditError(f"--format {fmt!r}: expected html or md")
    if lang not in ("vi", "en"):
        raise AuditError(f"--lang {lang!r}: expected vi or en")
    if fmt == "html" and html is None and not json_out:
        raise AuditError("say where to write the report: --html FILE (or --format md, or --json)")
    inv = load_inventory(inventory)
    with _store(db) as st:
        rep = rdata.build(st, inv, run, trend)
    written: Path | None = None
    if html is not None:
        written = rhtml.write(rep, html)
    md_text = rmd.render(rep, lang) if fmt == "md" else None
    if md_text is not None and output is not None:
        output.write_text(md_text, encoding="utf-8")
    if json_out:
        emit_json({**rep.as_dict(), "html": str(written) if written else None,
                   "markdown": str(output.resolve()) if output and md_text else None})
        return
    if md_text is not None and output is None:
        sys.stdout.write(md_text)
        sys.stdout.flush()
    elif md_text is not None and output is not None:
        console.print(f"Báo cáo Markdown / Markdown report: {output.resolve()}", highlight=False)
    if written is not None:
        console.print(f"Báo cáo HTML / HTML report: {written}", highlight=False, soft_wrap=True)


@app.command("availability")
@handle_errors
def availability_cmd(
    month: Annotated[str | None, typer.Option("--month", help="YYYY-MM (default: this month, UTC)")] = None,
    by: Annotated[str, typer.Option("--by", help="link | provider | district")] = "link",
    html: Annotated[Path | None, typer.Option("--html", help="Also write an HTML page to FILE")] = None,
    inventory: InventoryOpt = None,
    db: DbOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Độ khả dụng theo tháng / Monthly availability per link kind, telco or district, from stored runs."""
    from conftool.audit.reporting import availability as av
    from conftool.audit.reporting import html as rhtml

    if by not in ("link", "provider", "district"):
        raise AuditError(f"--by {by!r}: expected link, provider or district")
    inv = load_inventory(inventory)
    with _store(db) as st:
        rep = av.compute(st, inv, month, by)  # type: ignore[arg-type]
    if html is not None:
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(rhtml.render_availability(rep, inv), encoding="utf-8")
    if json_out:
        doc = rep.as_doc()
        doc["summary"]["html"] = str(html.resolve()) if html else None
        emit_json(doc)
        return
    t = Table(title=f"Độ khả dụng / availability {rep.month} ({rep.runs} runs)")
    for col in (by, "số đường / links", "khả dụng / available %", "đạt ngưỡng / within thresholds %",
                "quan sát / observed h"):
        t.add_column(col)
    for g in rep.groups:
        t.add_row(g.key, str(len(g.links)), _pct(g.pct), _pct(g.quality_pct), f"{g.observed_s / 3600:.1f}")
    console.print(t)
    if not rep.groups:
        console.print("Không có số liệu trong tháng / no reachability data stored for this month")
    if html is not None:
        console.print(f"HTML: {html.resolve()}", highlight=False)


def _pct(p: float | None) -> str:
    return f"{p:.3f}" if p is not None else "–"


# ----- schedule ------------------------------------------------------------------------------------------------
def _audit_fn(inventory: Path | None, site: list[str] | None, check: list[str] | None,
              direct: bool) -> Any:
    """The real audit of one scheduled run; the inventory is re-read each time (contacts, windows may change)."""

    def audit() -> RunRecord:
        from conftool.audit import registry
        from conftool.audit.rules import load_rules
        from conftool.audit.runner import Auditor, detect_target

        inv = load_inventory(inventory)
        target = detect_target(state_dir(), direct)
        selector = ",".join(site) if site else ""
        if site:
            selection = inv.select(site)
        elif target.mode == "lab":
            selection = inv.select([r.site for r in target.plan.routers if r.site in inv])
            selector = "lab"
        else:
            selection = inv
        auditor = Auditor(inv=inv, selection=selection, checks=registry.get(check), rules=load_rules(inv.base_dir, []),
                          target=target, selector=selector)
        return auditor.run_sync()

    return audit


def _backup_fn(inventory: Path | None, site: list[str] | None) -> Any:
    def backup() -> str | None:
        from conftool.cli.devices import selection
        from conftool.devices import runner

        inv = load_inventory(inventory)
        sel = selection(inv, site, quiet=True)  # --site, else the running lab's sites, else all
        results, configs = runner.fetch_running(inv, sel)
        repo = runner.backup_repo(state_dir())
        for r in results:
            if r.device in configs:
                repo.write(r.site, r.device, configs[r.device])
        commit = repo.commit([r.site for r in results if r.device in configs], "scheduled backup")
        failed = sum(r.status in ("failed", "unreachable") for r in results)
        return f"{commit[:10] if commit else 'unchanged'} ({len(configs)} configs, {failed} failed)"

    return backup


@app.command("schedule")
@handle_errors
def schedule_cmd(
    cron: Annotated[str, typer.Option("--cron", help="Crontab expression in --tz, e.g. \"0 */4 * * *\"")]
    = "0 */4 * * *",
    alert: Annotated[list[str] | None, typer.Option("--alert", help="smtp://[user@]host:port, smtps://…, or an "
                                                                     "http(s):// webhook (repeatable)")] = None,
    smtp_password: Annotated[str | None, typer.Option("--smtp-password", help="Credential reference for the SMTP "
                                                                               "login, e.g. env:SMTP_PASSWORD")]
    = None,
    smtp_from: Annotated[str, typer.Option("--smtp-from", help="Sender address")] = "lienthong-noc@localhost",
    noc_email: Annotated[list[str] | None, typer.Option("--noc-email", help="NOC address(es) (env "
                                                                            "LIENTHONG_NOC_EMAIL, comma-separated)")]
    = None,
    consecutive: Annotated[int, typer.Option("--consecutive", help="Runs a change must hold before it is alerted",
                                             min=1, max=100)] = 2,
    backup: Annotated[bool, typer.Option("--backup", help="Also back up running configs on each run")] = False,
    tz: Annotated[str, typer.Option("--tz", help="Time zone of the cron expression")] = "Asia/Ho_Chi_Minh",
    once: Annotated[bool, typer.Option("--once", help="One run now, then exit (for systemd timers and cron)")]
    = False,
    run_now: Annotated[bool, typer.Option("--run-now", help="Start with a run instead of waiting")] = False,
    print_systemd: Annotated[bool, typer.Option("--print-systemd", help="Print a systemd service + timer and exit")]
    = False,
    direct: Annotated[bool, typer.Option("--direct", help="Audit the real network from this machine")] = False,
    check: Annotated[list[str] | None, typer.Option("--check", "-c", help="Checks to run (default all)")] = None,
    inventory: InventoryOpt = None,
    site: SiteOpt = None,
    db: DbOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Lịch kiểm tra tự động / Run audits on a cron schedule with alerts on change (stops cleanly on SIGTERM)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from conftool.audit import schedule as sched
    from conftool.audit.alerts import Alerter, make_channel
    from conftool.audit.maintenance import MaintenanceBook

    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise AuditError(f"--tz {tz!r}: unknown time zone; e.g. Asia/Ho_Chi_Minh or UTC") from None
    sched.trigger(cron, zone)  # validate before anything else
    if print_systemd:
        _print_systemd(cron, tz, alert, smtp_password, smtp_from, noc_email, consecutive, backup, direct, check,
                       inventory, site, db)
        return
    nocs = [a.strip() for x in (noc_email or [os.environ.get("LIENTHONG_NOC_EMAIL", "")]) for a in x.split(",")
            if a.strip()]
    channels = [make_channel(u, sender=smtp_from, smtp_password=smtp_password) for u in (alert or [])]
    inv = load_inventory(inventory)
    store = _store(db)
    lock = sched.ScheduleLock(state_dir())
    lock.acquire()
    try:
        alerter = Alerter(store.engine, inv, channels, noc=nocs, consecutive=consecutive,
                          maintenance=MaintenanceBook(store.engine, inv))

        def alert_run(run: RunRecord, now: datetime) -> dict[str, Any]:
            alerter.set_inventory(load_inventory(inventory))  # contacts and windows may have changed
            return alerter.process(run, now)

        job = sched.AuditJob(audit=_audit_fn(inventory, site, check, direct), save=store.save,
                             alert=alert_run, backup=_backup_fn(inventory, site) if backup else None)
        if once:
            tick = job(datetime.now(UTC))
            _report_tick(tick, json_out)
            if tick.expected_error:
                raise typer.Exit(EXIT_USAGE)
            raise typer.Exit(EXIT_OK if tick.ok and not _failed(store, tick.run_id) else EXIT_FAILED)
        def job_and_say(fire: datetime) -> sched.Tick:
            tick = job(fire)
            _say(f"{datetime.now(UTC).isoformat(timespec='seconds')} lần kiểm tra / run {tick.run_id}: "
                 f"{'ok' if tick.ok else tick.error}; cảnh báo / alerts {tick.alerts}"
                 + (f"; sao lưu / backup {tick.backup}" if tick.backup else ""), json_out)
            return tick

        latest = store.latest_run()
        scheduler = sched.Scheduler(cron, job_and_say, tz=zone, last_run_at=latest.started_at if latest else None,
                                    run_now=run_now)
        stop = threading.Event()
        got: list[str] = []

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            got.append(signal.Signals(signum).name)
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        first = scheduler.plan()
        chans = ", ".join(c.name for c in channels) or "không có / none"
        _say(f"Lịch kiểm tra đã chạy / scheduler running: cron \"{cron}\" ({tz}), lần tới / next run "
             f"{first.astimezone(zone).isoformat(timespec='seconds')}, cảnh báo / alerts: {chans}", json_out)
        scheduler.run(stop)
        _say(f"Đã dừng lịch kiểm tra / scheduler stopped cleanly ({got[0] if got else 'done'}) after "
             f"{len(scheduler.ticks)} run(s)", json_out)
    finally:
        lock.release()
        store.close()


def _failed(store: AuditStore, run_id: int | None) -> bool:
    if run_id is None:
        return True
    s = store.run(run_id).summary()
    return bool(s[Status.FAIL.value] + s[Status.ERROR.value])


def _say(text: str, json_out: bool) -> None:
    """Status lines go to stdout unless --json (then stderr), flushed: supervisors and tests read them live."""
    stream = sys.stderr if json_out else sys.stdout
    stream.write(text + "\n")
    stream.flush()


def _report_tick(tick: Any, json_out: bool) -> None:
    doc = {"run": tick.run_id, "ok": tick.ok, "error": tick.error, "alerts": tick.alerts, "backup": tick.backup}
    if json_out:
        emit_json({"summary": doc, "items": []})
    else:
        console.print(f"run {tick.run_id}: {'ok' if tick.ok else tick.error}; alerts {tick.alerts}; "
                      f"backup {tick.backup}", highlight=False, soft_wrap=True)


def _print_systemd(cron: str, tz: str, alert: list[str] | None, smtp_password: str | None, smtp_from: str,
                   noc_email: list[str] | None, consecutive: int, backup: bool, direct: bool,
                   check: list[str] | None, inventory: Path | None, site: list[str] | None, db: str | None) -> None:
    import shlex

    from conftool.audit import schedule as sched

    args: list[str] = []
    for a in alert or []:
        args += ["--alert", a]
    if smtp_password:
        args += ["--smtp-password", smtp_password]
    args += ["--smtp-from", smtp_from, "--consecutive", str(consecutive)]
    for n in noc_email or []:
        args += ["--noc-email", n]
    for c in check or []:
        args += ["--check", c]
    for s in site or []:
        args += ["--site", s]
    if backup:
        args.append("--backup")
    if direct:
        args.append("--direct")
    if inventory:
        args += ["--inventory", str(inventory.resolve())]
    if db:
        args += ["--db", db]
    exe = str(Path(sys.argv[0]).resolve()) if Path(sys.argv[0]).name == "conftool" else "conftool"
    env = {"LIENTHONG_STATE": str(state_dir())}
    units = sched.systemd_units([shlex.quote(a) for a in args], calendar=sched.cron_to_oncalendar(cron, tz), exe=exe,
                                env=env)
    for name, text in units.items():
        sys.stdout.write(f"# --- /etc/systemd/system/{name} ---\n{text}\n")
    sys.stdout.write("# then: systemctl daemon-reload && systemctl enable --now lienthong-audit.timer\n")


# ----- maintenance ---------------------------------------------------------------------------------------------
@maintenance_app.command("add")
@handle_errors
def maint_add(
    site_id: Annotated[str, typer.Argument(help="Site id (a window also covers the sites under it)")],
    start: Annotated[str, typer.Option("--start", help="ISO time; no offset = local time (Asia/Ho_Chi_Minh)")],
    end: Annotated[str, typer.Option("--end", help="ISO time")],
    reason: Annotated[str, typer.Option("--reason", help="Why (shown in lists)")] = "",
    inventory: InventoryOpt = None,
    db: DbOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Thêm khung giờ bảo trì / Add a maintenance window for a site."""
    from conftool.audit.maintenance import MaintenanceBook, parse_time

    inv = load_inventory(inventory)
    with _store(db) as st:
        w = MaintenanceBook(st.engine, inv).add(site_id, parse_time(start, "--start"), parse_time(end, "--end"),
                                                reason)
    if json_out:
        emit_json(site_result_doc({"added": 1}, [w.as_dict()]))
    else:
        console.print(f"Đã thêm / added window {w.id}: {site_id} {w.start.isoformat()} → {w.end.isoformat()}",
                      highlight=False)


@maintenance_app.command("list")
@handle_errors
def maint_list(
    active: Annotated[bool, typer.Option("--active", help="Only windows in force now")] = False,
    inventory: InventoryOpt = None,
    db: DbOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Các khung giờ bảo trì / Windows from the database and the inventory (vars.maintenance)."""
    from conftool.audit.maintenance import MaintenanceBook

    inv = load_inventory(inventory)
    with _store(db) as st:
        ws = MaintenanceBook(st.engine, inv).windows(active_at=datetime.now(UTC) if active else None)
    if json_out:
        emit_json({"summary": {"windows": len(ws)}, "items": [w.as_dict() for w in ws]})
        return
    t = Table(title="Khung giờ bảo trì / maintenance windows")
    for col in ("id", "site", "start (UTC)", "end (UTC)", "source", "reason"):
        t.add_column(col)
    for w in ws:
        t.add_row(str(w.id or ""), w.site, w.start.strftime("%Y-%m-%d %H:%M"), w.end.strftime("%Y-%m-%d %H:%M"),
                  w.source, w.reason)
    console.print(t)


@maintenance_app.command("remove")
@handle_errors
def maint_remove(
    window_id: Annotated[int, typer.Argument(help="Window id (from `maintenance list`)")],
    db: DbOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Xoá khung giờ bảo trì / Remove a window added with `maintenance add`."""
    from conftool.audit.maintenance import MaintenanceBook

    with _store(db) as st:
        ok = MaintenanceBook(st.engine).remove(window_id)
    if json_out:
        emit_json({"summary": {"removed": int(ok)}, "items": []})
    elif ok:
        console.print(f"Đã xoá / removed window {window_id}")
    if not ok:
        raise AuditError(f"no maintenance window with id {window_id} in the database (see `maintenance list`)")
    raise typer.Exit(EXIT_OK)
