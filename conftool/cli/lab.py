"""`conftool lab …`: bring the emulated province up and down, look at it, run commands in it, break it."""

from __future__ import annotations

import subprocess
from typing import Annotated, Any

import typer
from rich.table import Table

from conftool.cli.common import InventoryOpt, JsonOpt, console, emit_json, handle_errors, load_inventory, state_dir
from conftool.errors import ConftoolError

app = typer.Typer(help="Network-namespace lab of the province / Phòng thí nghiệm mạng mô phỏng", no_args_is_help=True)


def _status_table(doc: dict[str, Any]) -> Table:
    state = "đang chạy / running" if doc["running"] else "dừng / stopped"
    t = Table(title=f"Lab ({doc.get('profile', '?')}) — {state}")
    for col in ("site", "node", "role", "namespace", "mgmt", "up", "daemons", "faults"):
        t.add_column(col)
    for n in doc["nodes"]:
        daemons = " ".join(f"{k}{'✓' if v else '✗'}" for k, v in n["daemons"].items())
        faults = ", ".join(f"{f['target']}{':' + f['link'] if f.get('link') else ''} {f['state']}"
                           + (f" {f['delay_ms']:g}±{f['jitter_ms']:g}ms {f['loss_pct']:g}%"
                              if f["state"] == "impaired" else "")
                           for f in n.get("faults", []))
        t.add_row(n["site"], n.get("hostname") or "", n["role"], n["namespace"], n["mgmt_address"] or "",
                  "✓" if n["up"] else "✗",
                  daemons, faults)
    return t


@app.command()
@handle_errors
def up(
    profile: Annotated[str, typer.Option("--profile", "-p", help="small (7 routers) or full (every router)")] = "small",
    impair: Annotated[str | None, typer.Option(
        "--impair", is_flag=False, flag_value="rural", metavar="[PROFILE]",
        help="Impair Internet/TSLCD links: delay, jitter, loss from a profile (default rural, or a YAML path) "
             "and the rate from the inventory's bandwidth")] = None,
    inventory: InventoryOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Build the lab from the inventory: routers (FRR + sshd), room PCs and servers, links, clouds, services."""
    from conftool.lab import status as lab_status
    from conftool.lab import up as lab_up

    if impair is not None and impair.startswith("-"):  # `--impair --json`: the option took the next flag as value
        if impair != "--json":
            raise ConftoolError(f"--impair took {impair!r} as its profile: write `--impair rural {impair}` or put "
                                "--impair last")
        impair, json_out = "rural", True
    inv = load_inventory(inventory)
    st = lab_up(inv, profile, state_dir(), impair=impair)
    doc = lab_status(state_dir())
    if json_out:
        emit_json(doc)
        return
    console.print(_status_table(doc))
    n = len(st.plan.routers) if st.plan else 0
    nh = len(st.plan.hosts) if st.plan else 0
    emu = doc["link_emulation"]
    console.print(f"Mô phỏng đường truyền / link emulation: {emu['backend']}"
                  + (f", profile {emu['profile']}: {emu['impaired_links']} links" if emu["profile"] else ""))
    console.print(f"Lab lên trong / up in {st.timings.get('up_s', 0):.1f} s: {n} routers, {nh} hosts, "
                  f"NOC {doc['noc_address']}. SSH: key {state_dir() / 'lab' / 'keys' / 'netops_ed25519'}.")
    console.print("Tắt lab / take it down: [bold]conftool lab down[/]")


@app.command()
@handle_errors
def down(json_out: JsonOpt = False) -> None:
    """Remove every namespace, link, process and file the lab made (also a half-built or stale lab)."""
    from conftool.lab import down as lab_down

    result = lab_down(state_dir())
    if json_out:
        emit_json({"removed": result or {}, "was_running": result is not None})
        return
    if result is None:
        console.print("Không có lab / no lab to take down.")
    else:
        console.print(f"Lab đã tắt / lab down: {result['namespaces']} namespaces, {result['processes']} processes, "
                      f"{result['links']} root links removed.")


@app.command()
@handle_errors
def status(json_out: JsonOpt = False) -> None:
    """Nodes of the lab, their daemons and faults (exit 1 when a node is down)."""
    from conftool.lab import status as lab_status

    doc = lab_status(state_dir())
    if json_out:
        emit_json(doc)
    elif not doc["nodes"]:
        console.print("Không có lab / no lab running: `conftool lab up`")
    else:
        console.print(_status_table(doc))
        emu = doc.get("link_emulation", {})
        console.print(f"Mô phỏng đường truyền / link emulation: {emu.get('backend')} — "
                      f"{emu.get('impaired_links', 0)} impaired, {emu.get('spliced_links', 0)} through the forwarder")
    if doc["nodes"] and not all(n["up"] for n in doc["nodes"]):
        raise typer.Exit(1)


@app.command(name="exec", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@handle_errors
def exec_(
    site: Annotated[str, typer.Argument(help="Site id, router or host hostname (pc-…, srv-…), isp, tslcd or svc")],
    cmd: Annotated[list[str], typer.Argument(help="Command (after --)")],
) -> None:
    """Run a command inside a lab node: `conftool lab exec 11 -- ip addr`."""
    from conftool.lab import exec_argv

    if not cmd:
        raise ConftoolError("give a command after --, e.g. `conftool lab exec 11 -- ip route`")
    prefix = exec_argv(site, state_dir())
    rc = subprocess.call([*prefix, *cmd])
    raise typer.Exit(rc)


@app.command()
@handle_errors
def fault(
    site: Annotated[str | None, typer.Argument(help="Site id or router hostname")] = None,
    link: Annotated[str | None, typer.Option("--link", help="lan | internet | dedicated")] = None,
    router: Annotated[bool, typer.Option("--router", help="The whole router: links down, daemons stopped")] = False,
    sshd: Annotated[bool, typer.Option("--sshd", help="Only its sshd")] = False,
    down: Annotated[bool, typer.Option("--down", help="Inject the fault")] = False,
    up: Annotated[bool, typer.Option("--up", help="Remove the fault")] = False,
    clear: Annotated[bool, typer.Option("--clear", help="Remove every fault (of SITE, or all)")] = False,
    loss: Annotated[float | None, typer.Option("--loss", help="Packet loss %% per direction on --link")] = None,
    delay: Annotated[float | None, typer.Option("--delay", help="Delay ms per direction on --link")] = None,
    jitter: Annotated[float | None, typer.Option("--jitter", help="Jitter ± ms per direction on --link")] = None,
    rate: Annotated[float | None, typer.Option("--rate", help="Rate limit Mbit/s on --link (0 = none)")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Inject or clear faults: `fault 094 --link dedicated --down`, `fault 094 --router --up`,
    `fault 03124 --link internet --delay 40 --jitter 5 --loss 1`, `fault --clear` (also impairments)."""
    from conftool.lab.faults import clear as clear_faults
    from conftool.lab.faults import impair, set_fault

    if clear:
        done = clear_faults(site, state_dir())
        if json_out:
            emit_json({"cleared": done})
        else:
            console.print(f"Đã gỡ / cleared {len(done)} fault(s).")
        return
    if site is None:
        raise ConftoolError("name a site (e.g. `conftool lab fault 094 --link dedicated --down`) or use --clear")
    targets = [t for t, on in (("link", link is not None), ("router", router), ("sshd", sshd)) if on]
    if len(targets) != 1:
        raise ConftoolError("choose exactly one of --link KIND, --router, --sshd")
    if any(v is not None for v in (loss, delay, jitter, rate)):
        if targets[0] != "link" or link is None:
            raise ConftoolError("--loss/--delay/--jitter/--rate apply to a --link")
        result = impair(site, link, loss, delay, state_dir(), jitter=jitter, rate=rate)
    else:
        if down == up:
            raise ConftoolError("choose one of --down or --up")
        result = set_fault(site, targets[0], down=down, link=link, state_root=state_dir())
    if json_out:
        emit_json({"fault": result, "state": result["state"] if "backend" in result else ("down" if down else "up")})
    else:
        console.print(f"{result['site']}: {result['target']}{' ' + str(result['link']) if result.get('link') else ''}"
                      f" → {'down' if down else ('up' if up else result.get('state'))}")
