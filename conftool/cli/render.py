"""`conftool render`: intended configs from the inventory and the device templates, one file per device."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from conftool.cli.common import (
    EXIT_USAGE,
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
from conftool.inventory import Device, Site
from conftool.render import Renderer, RenderError, RenderResult

logger = logging.getLogger(__name__)

STATUS_STYLE = {"rendered": "green", "skipped": "dim", "unmanaged": "yellow", "failed": "bold red"}


def _render_all(renderer: Renderer, pairs: list[tuple[Site, Device]]) -> list[RenderResult]:
    out: list[RenderResult] = []
    for site, dev in pairs:
        try:
            out.append(renderer.render(site, dev))
        except RenderError as exc:  # one broken device is reported; the others still render
            out.append(RenderResult(site=site.id, device=dev.hostname, platform=dev.platform,
                                    role=dev.role.value, status="failed", detail=str(exc)))
    return out


@handle_errors
def render_cmd(
    site: SiteOpt = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Directory for <hostname>.cfg files "
                                             "(default: <state dir>/intended)")] = None,
    show: Annotated[bool, typer.Option("--print", help="Also print each config to stdout")] = False,
    inventory: InventoryOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Render intended device configs / Sinh cấu hình thiết bị: one file per router (hosts and `managed: false`
    devices are skipped)."""
    inv = load_inventory(inventory)
    chosen = inv.select(site)
    renderer = Renderer(inv)  # the whole province: summary routes and per-LAN routes need every site
    results = _render_all(renderer, list(chosen.devices()))
    out_dir = out if out is not None else state_dir() / "intended"
    paths: dict[str, str] = {}
    if any(r.config is not None for r in results):
        out_dir.mkdir(parents=True, exist_ok=True)
    for r in results:
        if r.config is not None:
            p = out_dir / f"{r.device}.cfg"
            p.write_text(r.config, encoding="utf-8")
            paths[r.device] = str(p)
    counts = Counter(r.status for r in results)
    failed = counts.get("failed", 0)
    if json_out:
        items = [{**r.as_item(), "path": paths.get(r.device)} for r in results]
        emit_json(site_result_doc({"total": len(results), **counts, "out": str(out_dir)}, items))
    else:
        if show:
            for r in results:
                if r.config is not None:
                    console.print(f"[bold]### {r.device}[/] ({r.site}, {r.template})", highlight=False)
                    console.out(r.config, highlight=False)
        table = Table(title=f"render → {out_dir}")
        for col in ("site", "device", "platform/role", "trạng thái / status", "detail"):
            table.add_column(col)
        for r in results:
            style = STATUS_STYLE.get(r.status, "")
            table.add_row(r.site, r.device, f"{r.platform}/{r.role}", f"[{style}]{r.status}[/]", r.detail)
        console.print(table)
        console.print(", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    if failed:
        for r in results:
            if r.status == "failed":
                err_console.print(f"[bold red]Lỗi / Error:[/] {r.detail}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_USAGE)
