"""The engineer's command line: `conftool <group> <command>` (typer + rich)."""

from __future__ import annotations

from typing import Annotated

import typer

from conftool.cli.audit import app as audit_app
from conftool.cli.audit_ops import availability_cmd, maintenance_app, report_cmd, schedule_cmd
from conftool.cli.common import setup_logging
from conftool.cli.devices import backup_cmd, deploy_cmd, diff_cmd
from conftool.cli.inventory import app as inventory_app
from conftool.cli.lab import app as lab_app
from conftool.cli.play import bootstrap_cmd, play_cmd
from conftool.cli.render import render_cmd

app = typer.Typer(
    name="conftool",
    help="Liên Thông — inventory, configs, audit and lab of the province network / quản lý mạng tỉnh.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(inventory_app, name="inventory")
app.add_typer(lab_app, name="lab")
app.command("render")(render_cmd)
app.add_typer(audit_app, name="audit")
# Reports, availability, schedule and maintenance live under `conftool audit` next to run/history/diff.
audit_app.command("report")(report_cmd)
audit_app.command("availability")(availability_cmd)
audit_app.command("schedule")(schedule_cmd)
audit_app.add_typer(maintenance_app, name="maintenance")
app.command("deploy")(deploy_cmd)
app.command("backup")(backup_cmd)
app.command("diff")(diff_cmd)
app.command("play")(play_cmd)
app.command("bootstrap")(bootstrap_cmd)
# Feature groups register here, one line each (lab, render/deploy, audit, play ...).


@app.callback()
def _root(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging")] = False) -> None:
    setup_logging(verbose)


def main() -> None:
    app()
