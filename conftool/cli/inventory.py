"""`conftool inventory …`: build, check, show and export the province inventory."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.tree import Tree

from conftool.cli.common import (
    EXIT_USAGE,
    InventoryOpt,
    JsonOpt,
    SiteOpt,
    console,
    emit_json,
    handle_errors,
    inventory_path,
    load_inventory,
)
from conftool.errors import ConftoolError
from conftool.inventory import Era, Inventory, Level, Site
from conftool.inventory.yamlio import dump_yaml

app = typer.Typer(help="Province inventory / Danh mục điểm mạng của tỉnh", no_args_is_help=True)


def _era(value: str) -> Era:
    try:
        return Era(value)
    except ValueError:
        raise ConftoolError(f"--era must be 'legacy' or '2025', not {value!r}") from None


@app.command()
@handle_errors
def init(
    province: Annotated[str, typer.Option("--province", "-p", help="Name (with or without diacritics) or GSO code")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to create")],
    era: Annotated[str, typer.Option("--era", help="legacy (3 levels, default) or 2025 (2 levels)")] = "legacy",
    supernet: Annotated[str | None, typer.Option(
        "--supernet", help="Addressing supernets, e.g. lan=10.11.0.0/16,dedicated=172.16.0.0/16,"
                           "internet=100.64.0.0/16,mgmt=10.250.0.0/20")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing directory")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Build a full inventory skeleton from official GSO data and a deterministic addressing plan."""
    from conftool.inventory import load
    from conftool.inventory.generate import init as build_init
    from conftool.inventory.generate import write_dir

    data = build_init(province, _era(era), supernet)
    files = write_dir(data, out, force=force)
    inv = load(out)  # what we wrote must load back, or it is a bug worth a traceback
    if json_out:
        emit_json({"out": str(out), "files": len(files), "counts": inv.counts()})
        return
    c = inv.counts()
    console.print(f"[green]Đã tạo / created[/] {out}: {len(files)} files — tỉnh {c['province']}, "
                  f"huyện {c['district']}, xã {c['commune']} ({inv.era.value} map)")


@app.command()
@handle_errors
def validate(
    directory: Annotated[Path | None, typer.Argument(help="Inventory directory (default: --inventory)")] = None,
    inventory: InventoryOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Check an inventory; every problem is listed with its file, field path and site. Exit 2 if any."""
    path = directory or inventory_path(inventory)
    inv = load_inventory(path)
    if json_out:
        emit_json({"valid": True, "path": str(path), "counts": inv.counts(), "problems": []})
        return
    c = inv.counts()
    console.print(f"[green]Hợp lệ / valid[/]: {path} — {c['province']} tỉnh, {c['district']} huyện, "
                  f"{c['commune']} xã; {sum(1 for _ in inv.devices())} thiết bị / devices")


def _site_json(s: Site) -> dict[str, Any]:
    return {"id": s.id, "name": s.name, "kind": s.kind, "slug": s.slug, "level": s.level.value,
            "parent": s.parent, "code_2025": s.code_2025, "name_2025": s.name_2025,
            "links": [lk.kind.value for lk in s.links], "devices": [d.hostname for d in s.devices]}


def _tree_legacy(inv: Inventory) -> Tree:
    root = Tree(f"[bold]{inv.province.name}[/] ({inv.province.id})")
    nodes: dict[str, Tree] = {}
    for s in inv.sites:
        label = f"{s.full_name} [dim]{s.id} {s.slug}[/] — " + ", ".join(lk.kind.value for lk in s.links)
        parent = nodes.get(s.parent or "") if s.parent else None
        if s.level == Level.PROVINCE:
            nodes[s.id] = root
            continue
        nodes[s.id] = (parent or root).add(label)
    return root


def _tree_2025(inv: Inventory) -> Tree:
    root = Tree(f"[bold]{inv.province.name}[/] — bản đồ 2025 / 2025 map")
    groups: dict[str, list[Site]] = defaultdict(list)
    for s in inv.sites:
        if s.code_2025:
            groups[s.code_2025].append(s)
    names = inv.province.communes_2025
    for code in sorted(groups, key=lambda c: names.get(c, c)):
        node = root.add(f"{names.get(code, code)} [dim]{code}[/] — {len(groups[code])} điểm / sites")
        for s in groups[code]:
            node.add(f"{s.full_name} [dim]{s.id} ({s.level.value})[/]")
    rest = [s for s in inv.sites if not s.code_2025]
    if rest:
        node = root.add("[dim]không thuộc xã nào / no 2025 commune[/]")
        for s in rest:
            node.add(f"{s.full_name} [dim]{s.id}[/]")
    return root


@app.command()
@handle_errors
def show(
    directory: Annotated[Path | None, typer.Argument(help="Inventory directory (default: --inventory)")] = None,
    inventory: InventoryOpt = None,
    site: SiteOpt = None,
    era: Annotated[str | None, typer.Option("--era", help="View by legacy or 2025 communes")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Counts per level and per link kind, and the site tree."""
    inv = load_inventory(directory or inventory_path(inventory)).select(site)
    view = _era(era) if era else inv.era
    if json_out:
        doc: dict[str, Any] = {"province": {"id": inv.province.id, "name": inv.province.name,
                                            "era": inv.era.value},
                               "counts": inv.counts(), "links": inv.link_counts(),
                               "devices": sum(1 for _ in inv.devices()),
                               "sites": [_site_json(s) for s in inv.sites]}
        if view == Era.Y2025:
            groups: dict[str, list[str]] = defaultdict(list)
            for s in inv.sites:
                if s.code_2025:
                    groups[s.code_2025].append(s.id)
            doc["communes_2025"] = [{"code": c, "name": inv.province.communes_2025.get(c), "sites": ids}
                                    for c, ids in sorted(groups.items())]
        emit_json(doc)
        return
    table = Table(title=f"{inv.province.name} — {len(inv)} điểm / sites", show_header=True)
    for col in ("Cấp / level", "Số / count"):
        table.add_column(col)
    for k, v in inv.counts().items():
        table.add_row(k, str(v))
    for k, v in inv.link_counts().items():
        table.add_row(f"link {k}", str(v))
    console.print(table)
    console.print(_tree_2025(inv) if view == Era.Y2025 else _tree_legacy(inv))


@app.command()
@handle_errors
def export(
    fmt: Annotated[str, typer.Option("--format", "-f", help="ansible or json")] = "json",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="File to write (default stdout)")] = None,
    inventory: InventoryOpt = None,
    site: SiteOpt = None,
) -> None:
    """Export for other tools: Ansible YAML inventory (groups per level, district, role) or full JSON."""
    import json

    from conftool.inventory.export import to_ansible, to_json

    inv = load_inventory(inventory).select(site)
    if fmt == "json":
        text = json.dumps(to_json(inv), ensure_ascii=False, indent=2) + "\n"
    elif fmt == "ansible":
        text = dump_yaml(to_ansible(inv))
    else:
        console.print(f"[red]--format must be ansible or json, not {fmt!r}[/]")
        raise typer.Exit(EXIT_USAGE)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        console.print(f"wrote {out}")
