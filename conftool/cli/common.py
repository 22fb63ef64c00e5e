"""Shared CLI plumbing: options every command takes, error → exit-code mapping, the §9 JSON shape."""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console

from conftool.errors import ConftoolError, InventoryError
from conftool.inventory import Inventory, default_inventory_path, load

P = ParamSpec("P")
R = TypeVar("R")

console = Console()
err_console = Console(stderr=True)
logger = logging.getLogger("conftool")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

InventoryOpt = Annotated[
    Path | None,
    typer.Option("--inventory", "-i", help="Inventory directory (env LIENTHONG_INVENTORY; default inventory/dien-bien)",
                 show_default=False),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output (DESIGN §9 shape)")]
SiteOpt = Annotated[
    list[str] | None,
    typer.Option("--site", "-s", help="Site selector: id, slug glob, level:commune, district:ID-or-slug (repeatable)"),
]


def state_dir() -> Path:
    """LIENTHONG_STATE or ~/.local/state/lienthong (DESIGN §9)."""
    from conftool.inventory.secrets import default_state_dir

    return default_state_dir()


def inventory_path(opt: Path | None) -> Path:
    return opt if opt is not None else default_inventory_path()


def load_inventory(opt: Path | None) -> Inventory:
    return load(inventory_path(opt))


def emit_json(data: Any) -> None:
    """Print JSON to stdout without rich markup (machines read it)."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
    sys.stdout.flush()


def site_result_doc(summary: Mapping[str, Any], items: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The §9 machine output: {"summary": {...}, "items": [{"site", "device", "kind", "status", "detail"}]}."""
    return {"summary": dict(summary), "items": [dict(i) for i in items]}


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn expected errors into a clear message and exit code 2 — never a traceback for bad input."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except InventoryError as exc:
            if kwargs.get("json_out"):
                emit_json({"error": "invalid inventory", "problems": [p.as_dict() for p in exc.problems]})
            err_console.print(f"[bold red]Lỗi / Error:[/] {exc}", markup=True, highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except ConftoolError as exc:
            if kwargs.get("json_out"):
                emit_json({"error": str(exc)})
            err_console.print(f"[bold red]Lỗi / Error:[/] {exc}", markup=True, highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper


def setup_logging(verbose: bool) -> None:
    level = logging.DEBUG if verbose else getattr(logging, os.environ.get("LIENTHONG_LOG", "WARNING").upper(),
                                                  logging.WARNING)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
