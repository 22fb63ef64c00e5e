"""The engineer's command line: `conftool <group> <command>` (typer + rich)."""

from __future__ import annotations

from typing import Annotated

import typer

from conftool.cli.common import setup_logging
from conftool.cli.inventory import app as inventory_app

app = typer.Typer(
    name="conftool",
    help="Liên Thông — inventory, configs, audit and lab of the province network / quản lý mạng tỉnh.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(inventory_app, name="inventory")
# Feature groups register here, one line each (lab, render/deploy, audit, play ...).


@app.callback()
def _root(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging")] = False) -> None:
    setup_logging(verbose)


def main() -> None:
    app()
