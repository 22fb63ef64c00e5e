"""Lab lifecycle: `down` leaves nothing behind, crashes are cleaned, bad input builds nothing (exit 2)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from netmiko import ConnectHandler

from conftool.lab.netns import pids_in_netns
from conftool.lab.state import proc_start_time
from tests.lab.fixtures import CONFTOOL, LabSession, machine_snapshot

pytestmark = pytest.mark.lab


def lab_traces(lab: LabSession) -> dict[str, object]:
    """Everything of this lab that could outlive it, read from its state and the machine."""
    state = json.loads((lab.state / "lab" / "state.json").read_text())
    names = state["namespaces"]
    pids = {(p["pid"], p["start"]) for p in state["processes"]}
    pids |= {(pid, proc_start_time(pid)) for pid in pids_in_netns(names)}
    return {"namespaces": names, "root_links": state["root_links"], "pids": pids}


def assert_clean(lab: LabSession, traces: dict[str, Any]) -> None:
    snap = machine_snapshot()
    assert not set(traces["namespaces"]) & set(snap["netns"])
    assert not set(traces["root_links"]) & set(snap["links"])
    alive = [pid for pid, start in traces["pids"] if start is not None and proc_start_time(pid) == start]
    assert alive == []
    # Other tools may mount things meanwhile; none of the new mounts may be the lab's.
    ours = tuple(f"/run/netns/{n} " for n in traces["namespaces"])  # type: ignore[attr-defined]
    new = set(snap["mounts"]) - set(lab.before["mounts"])
    assert not [m for m in new if str(lab.state) in m or any(o in m for o in ours)]
    assert not (lab.state / "lab").exists()
    # The state dir is shared with other flows (deploy's backups and session logs, the database, the scheduler's
    # lock, reports); the lab keeps everything under state/lab, and nothing of it may remain.
    assert [p for p in lab.state.iterdir() if p.name.startswith("lab")] == []


def test_down_leaves_no_namespace_process_mount_link_or_file(lab_session: LabSession) -> None:
    if lab_session.is_up:
        lab_session.down()
    lab_session.up()
    # A fresh router holds only its bootstrap: management, no link address (deploy brings those).
    run = lab_session.exec("03151", "vtysh", "-N", "rt-na-lay", "-c", "show running-config").stdout
    assert "hostname rt-na-lay" in run and "ip address 10.250.0.64/20" in run
    assert "100.64." not in run and "172.16." not in run and "ip route" not in run
    # While it runs: the automation user exists only inside the routers, never in the machine's files.
    assert machine_snapshot()["etc"] == lab_session.before["etc"]
    assert lab_session.exec("094", "id", "-un", "netops").stdout.strip() == "netops"
    traces = lab_traces(lab_session)
    assert len(traces["pids"]) >= 7 * 4  # type: ignore[arg-type]
    lab_session.down()
    assert_clean(lab_session, traces)
    cp = lab_session.cli("lab", "down", "--json")
    assert cp.returncode == 0 and json.loads(cp.stdout)["was_running"] is False


def test_crash_during_up_is_cleaned_by_down(lab_session: LabSession) -> None:
    if lab_session.is_up:
        lab_session.down()
    state_file = lab_session.state / "lab" / "state.json"
    proc = subprocess.Popen([*CONFTOOL, "lab", "up"], env=lab_session.env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if len(json.loads(state_file.read_text())["processes"]) >= 3:
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    state = json.loads(state_file.read_text())
    assert state["status"] == "building"  # killed half-way
    traces = lab_traces(lab_session)
    cp = lab_session.cli("lab", "up")
    assert cp.returncode == 2 and "half-built" in cp.stderr
    lab_session.down()
    assert_clean(lab_session, traces)


def test_stale_lab_is_cleaned_by_the_next_up(lab_session: LabSession) -> None:
    lab_session.up()
    traces = lab_traces(lab_session)
    for pid, start in traces["pids"]:  # type: ignore[attr-defined]
        if start is not None and proc_start_time(pid) == start:  # every lab process dies: a "crash"
            os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    cp = lab_session.cli("lab", "up", "--json")
    assert cp.returncode == 0, cp.stderr
    assert "cleaning a stale lab" in cp.stderr
    assert all(n["up"] for n in json.loads(cp.stdout)["nodes"])


def test_taken_namespace_refuses_and_builds_nothing(lab_session: LabSession) -> None:
    if lab_session.is_up:
        lab_session.down()
    subprocess.run(["ip", "netns", "add", "lt-tslcd"], check=True)
    try:
        before = machine_snapshot()
        cp = lab_session.cli("lab", "up")
        assert cp.returncode == 2 and "lt-tslcd" in cp.stderr and "already exist" in cp.stderr
        after = machine_snapshot()
        assert after["netns"] == before["netns"] and after["links"] == before["links"]
        assert not (lab_session.state / "lab").exists()
    finally:
        subprocess.run(["ip", "netns", "del", "lt-tslcd"], check=True)


def test_invalid_inventory_refuses(lab_session: LabSession, tmp_path: Path, reference_inventory: Path) -> None:
    if lab_session.is_up:
        lab_session.down()
    bad = tmp_path / "inv"
    shutil.copytree(reference_inventory, bad)
    prov = bad / "province.yml"
    prov.write_text(prov.read_text().replace("mgmt_prefix: 10.250.0.0/20", "mgmt_prefix: not-a-prefix"))
    before = machine_snapshot()
    cp = lab_session.cli("lab", "up", "--inventory", str(bad))
    assert cp.returncode == 2 and "province.yml" in cp.stderr and "Traceback" not in cp.stderr
    assert machine_snapshot()["netns"] == before["netns"]


def test_not_root_refuses(lab_session: LabSession, tmp_path: Path) -> None:
    tmp_path.chmod(0o777)
    env = {**lab_session.env, "LIENTHONG_STATE": str(tmp_path / "state")}
    cp = subprocess.run(["runuser", "-u", "nobody", "--", *CONFTOOL, "lab", "up"], capture_output=True, text=True,
                        env=env, cwd="/")
    assert cp.returncode == 2 and "needs root" in cp.stderr, cp.stderr


@pytest.mark.slow
def test_full_profile_brings_every_router_up(lab_session: LabSession) -> None:
    """All 140 routers of Điện Biên (DESIGN §7: full lab up ≤ 60 s)."""
    if lab_session.is_up:
        lab_session.down()
    started = time.monotonic()
    cp = lab_session.cli("lab", "up", "--profile", "full", "--json", timeout=300)
    elapsed = time.monotonic() - started
    try:
        assert cp.returncode == 0, cp.stderr
        doc = json.loads(cp.stdout)
        routers = [n for n in doc["nodes"] if n["role"] == "router"]
        assert len(routers) == 140 and all(n["up"] for n in doc["nodes"])
        assert elapsed < 60, f"full lab up took {elapsed:.1f} s"
        last = routers[-1]
        conn = ConnectHandler(device_type="cisco_ios", host=last["mgmt_address"], username="netops",
                              key_file=str(lab_session.key), use_keys=True, allow_agent=False, timeout=20)
        try:
            assert conn.find_prompt() == f"{last['hostname']}#"
        finally:
            conn.disconnect()
    finally:
        lab_session.is_up = True
        lab_session.down()
