"""`conftool play PLAYBOOK`: Ansible over the site hosts, one progress bar per host, one table at the end."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
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
    site_result_doc,
    state_dir,
)
from conftool.cli.devices import selection
from conftool.play import (
    DEFAULT_FORKS,
    HostProgress,
    PlayOptions,
    PlayReport,
    find_playbook,
    linux_hosts,
    parse_secret_refs,
    run_play,
)

STYLE = {"ok": "green", "changed": "yellow", "failed": "red", "unreachable": "red"}
BARS_UP_TO = 30  # more hosts than this: one overall bar instead of one per host


def _split(values: list[str] | None) -> list[str]:
    return [t.strip() for v in values or [] for t in v.split(",") if t.strip()]


def _table(report: PlayReport) -> Table:
    mode = " (--check)" if report.check else ""
    t = Table(title=f"{report.playbook}{mode} — {report.elapsed_s:.1f} s")
    for c in ("site", "host", "status", "ok", "changed", "failed", "unreachable", "task / message"):
        t.add_column(c, justify="right" if c in ("ok", "changed", "failed", "unreachable") else "left")
    for r in report.results:
        st = STYLE.get(r.status, "")
        why = f"{r.task}: {r.message}" if r.task else ""
        t.add_row(r.site, r.host, f"[{st}]{r.status}[/]", str(r.ok), str(r.changed), str(r.failed),
                  str(r.unreachable), why)
    return t


class _Bars:
    """A progress bar per host (pulsing: Ansible does not say how many tasks remain), or one overall bar."""

    def __init__(self, hosts: list[str]) -> None:
        self.per_host = len(hosts) <= BARS_UP_TO
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                                 TimeElapsedColumn(), console=err_console, transient=True)
        self.tasks: dict[str, TaskID] = {}
        self.finished: set[str] = set()
        if self.per_host:
            for h in hosts:
                self.tasks[h] = self.progress.add_task(h, total=None, info="")
        else:
            self.tasks["*"] = self.progress.add_task("hosts", total=len(hosts), info="")

    def update(self, host: str, p: HostProgress) -> None:
        info = f"{p.done} tasks, {p.changed} changed — {p.last_task[:40]}"
        if self.per_host and host in self.tasks:
            if p.finished:
                self.progress.update(self.tasks[host], total=1, completed=1, info=f"[red]{p.status}[/] {info}")
            else:
                self.progress.update(self.tasks[host], info=info)
        elif not self.per_host:
            if p.finished:
                self.finished.add(host)
            self.progress.update(self.tasks["*"], completed=len(self.finished), info=f"{host}: {info}")


@handle_errors
def play_cmd(
    playbook: Annotated[str, typer.Argument(help="baseline | meeting-endpoint | soc-forwarding, or a playbook path")],
    site: SiteOpt = None,
    check: Annotated[bool, typer.Option("--check", help="Dry run: report what would change, change nothing")] = False,
    diff: Annotated[bool, typer.Option("--diff", help="Show the changes made (or, with --check, that would be)")]
    = False,
    tags: Annotated[list[str] | None, typer.Option("--tags", "-t", help="Only tasks with these tags (ntp, ssh, "
                                                   "updates, banner, syslog, agent …)")] = None,
    skip_tags: Annotated[list[str] | None, typer.Option("--skip-tags", help="Skip tasks with these tags")] = None,
    forks: Annotated[int, typer.Option("--forks", min=1, max=500, help="Hosts in parallel")] = DEFAULT_FORKS,
    secret_ref: Annotated[list[str] | None, typer.Option(
        "--secret-ref", help="NAME=REFERENCE given to the playbook as a vault-protected var, e.g. "
        "meeting_token=vault:secrets/site-tokens.vault#{site} ({site}/{host} are replaced per host)")] = None,
    inventory: InventoryOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Chạy playbook Ansible trên máy trạm/máy chủ của các điểm / run an Ansible playbook on the site hosts."""
    pb = find_playbook(playbook)
    refs = parse_secret_refs(secret_ref)
    inv = selection(load_inventory(inventory), site, quiet=json_out)
    hosts = linux_hosts(inv)
    from conftool.lab import running_sites

    sd = state_dir()
    lab = running_sites(sd) is not None
    opts = PlayOptions(check=check, diff=diff, tags=_split(tags), skip_tags=_split(skip_tags), forks=forks,
                       secret_refs=refs)
    if json_out:
        report = run_play(inv, pb, hosts, opts, state_dir=sd, lab=lab)
    else:
        bars = _Bars([d.hostname for _, d in hosts])
        with bars.progress:
            report = run_play(inv, pb, hosts, opts, state_dir=sd, lab=lab, on_progress=bars.update)
    if json_out:
        emit_json(site_result_doc(report.summary(), [r.item() for r in report.results]))
    else:
        if report.results:
            console.print(_table(report))
        if diff:
            for r in report.results:
                for task, text in r.diffs:
                    console.rule(f"{r.host}: {task}")
                    console.print(text, markup=False, highlight=False)
        s = report.summary()
        console.print(f"hosts {s['hosts']}: ok {s['ok']}, changed {s['changed']}, failed {s['failed']}, "
                      f"unreachable {s['unreachable']}")
        for e in report.errors:
            err_console.print(f"[bold red]Lỗi / Error:[/] {e}", highlight=False)
    if report.failed:
        raise typer.Exit(EXIT_FAILED)


@handle_errors
def bootstrap_cmd(
    host: Annotated[str, typer.Option("--host", help="The server's hostname (e.g. srv-dien-bien) or mgmt address")],
    role: Annotated[str, typer.Option("--role", help="meeting-server | turn | audit-runner")] = "meeting-server",
    turn_credentials: Annotated[str | None, typer.Option(
        "--turn-credentials", help="Reference to the TURN user's password (env:VAR or vault:FILE#key)")] = None,
    cron: Annotated[str, typer.Option("--cron", help="Audit schedule of the audit-runner role")] = "0 */4 * * *",
    inventory: InventoryOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Cài dịch vụ của bộ công cụ lên máy chủ (pyinfra) / install the suite's own services on a server."""
    from conftool.lab import running_sites
    from conftool.play.bootstrap import bootstrap

    sd = state_dir()
    inv = load_inventory(inventory)
    if json_out:
        report = bootstrap(inv, host, role, state_dir=sd, lab=running_sites(sd) is not None,
                           turn_credentials=turn_credentials, cron=cron)
    else:
        with err_console.status(f"pyinfra: {role} → {host} …"):
            report = bootstrap(inv, host, role, state_dir=sd, lab=running_sites(sd) is not None,
                               turn_credentials=turn_credentials, cron=cron)
    item = report.item()
    if json_out:
        emit_json(site_result_doc({"host": report.host, "role": role, "status": report.status,
                                   "operations": len(report.ops), "changed": report.changed,
                                   "elapsed_s": round(report.elapsed_s, 2)}, [item]))
    else:
        t = Table(title=f"bootstrap {role} → {report.host} — {report.elapsed_s:.1f} s")
        for c in ("operation", "result"):
            t.add_column(c)
        for o in report.ops:
            res = "[red]failed[/] " + (o.error or "") if not o.success else (
                "[yellow]changed[/]" if o.changed else "[green]ok[/]")
            t.add_row(o.name, res)
        console.print(t)
        console.print(f"{report.host}: {report.status} ({report.changed} changed of {len(report.ops)})")
        if report.error:
            err_console.print(f"[bold red]Lỗi / Error:[/] {report.error}", highlight=False)
    if report.status == "failed":
        raise typer.Exit(EXIT_FAILED)
