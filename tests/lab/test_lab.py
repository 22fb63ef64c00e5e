"""The running `small` lab: Netmiko sessions, pings across each link kind, services, faults, status."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from netmiko import ConnectHandler

from conftool.lab.netns import pids_in_netns
from tests.lab.fixtures import LabSession

pytestmark = pytest.mark.lab

PROV, DISTRICT, COMMUNE = "11", "094", "03124"
MGMT = {PROV: "10.250.0.16", DISTRICT: "10.250.0.18", COMMUNE: "10.250.0.38"}


def connect(lab: LabSession, site: str) -> Any:
    return ConnectHandler(device_type="cisco_ios", host=MGMT[site], username="netops", key_file=str(lab.key),
                          use_keys=True, allow_agent=False, timeout=20, conn_timeout=10)


def ping(lab: LabSession, node: str, address: str, *extra: str) -> bool:
    return lab.exec(node, "ping", "-c", "1", "-W", "1", *extra, address).returncode == 0


def ping_soon(lab: LabSession, node: str, address: str, *extra: str, tries: int = 20) -> bool:
    """Links and routes settle within a moment after a change; allow a few tries."""
    for _ in range(tries):
        if ping(lab, node, address, *extra):
            return True
        time.sleep(0.2)
    return False


def comms_in(namespace: str) -> set[str]:
    out = set()
    for pid in pids_in_netns([namespace]):
        try:
            out.add(Path(f"/proc/{pid}/comm").read_text().strip())
        except OSError:
            continue  # gone meanwhile
    return out


def ssh_open(address: str) -> bool:
    try:
        with socket.create_connection((address, 22), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def addressed(lab_session: LabSession) -> Iterator[LabSession]:
    """Link addresses and static routes configured through Netmiko's config mode (deploy does this later)."""
    lab_session.up()
    cfg = {
        PROV: ["interface lan0", " ip address 10.11.0.1/24", "exit",
               "interface wan0", " ip address 100.64.0.2/30", "exit",
               "interface tslcd0", " ip address 172.16.0.2/30", "exit",
               "ip route 10.11.11.0/24 172.16.0.1"],
        COMMUNE: ["interface lan0", " ip address 10.11.11.1/24", "exit",
                  "interface wan0", " ip address 100.64.0.46/30", "exit",
                  "interface tslcd0", " ip address 172.16.0.46/30", "exit",
                  "ip route 10.11.0.0/24 172.16.0.45"],
    }
    for site, lines in cfg.items():
        conn = connect(lab_session, site)
        try:
            conn.send_config_set(lines)
            conn.save_config()
        finally:
            conn.disconnect()
    yield lab_session


def test_netmiko_show_config_mode_and_write_memory_survive_a_restart(lab: LabSession) -> None:
    conn = connect(lab, DISTRICT)
    try:
        assert conn.find_prompt() == "rt-dien-bien-phu#"
        run = conn.send_command("show running-config")
        assert "hostname rt-dien-bien-phu" in run and "ip address 10.250.0.18/20" in run
        brief = {line.split()[0]: line.split()[1] for line in conn.send_command("show interface brief").splitlines()
                 if line.split() and line.split()[0] in ("lan0", "wan0", "tslcd0", "mgmt0")}
        assert brief == {"lan0": "up", "wan0": "up", "tslcd0": "up", "mgmt0": "up"}
        out = conn.send_config_set(["interface wan0", " description Internet Viettel (test)", "exit"])
        assert "rt-dien-bien-phu(config-if)#" in out and "% " not in out.replace("% Warning", "")
        assert conn.check_config_mode() is False  # send_config_set ends with `end`
        saved = conn.save_config()
        assert "Integrated configuration saved" in saved
    finally:
        conn.disconnect()
    # "router down" stops every daemon; "up" starts them from the saved config only.
    lab.cli("lab", "fault", DISTRICT, "--router", "--down", check=True)
    lab.cli("lab", "fault", DISTRICT, "--router", "--up", check=True)
    conn = connect(lab, DISTRICT)
    try:
        assert "description Internet Viettel (test)" in conn.send_command("show running-config")
    finally:
        conn.disconnect()


def test_ping_across_internet_and_dedicated_links(addressed: LabSession) -> None:
    lab = addressed
    assert ping_soon(lab, "isp", "100.64.0.2")      # ISP ↔ province, Internet link
    assert ping_soon(lab, "tslcd", "172.16.0.46")   # TSLCD PE ↔ commune, dedicated link
    assert ping_soon(lab, COMMUNE, "100.64.0.45")   # commune → its ISP gateway


def test_lan_and_services_across_tslcd(addressed: LabSession) -> None:
    lab = addressed
    assert ping_soon(lab, "svc", "10.11.0.1")  # services namespace ↔ province router, LAN link
    # Commune LAN → TSLCD → province LAN: the SOC collector, NTP and DNS answer from the commune.
    assert ping_soon(lab, COMMUNE, "10.11.0.10", "-I", "10.11.11.1")
    assert not ping(lab, "isp", "10.11.0.10")  # province services are not on the Internet path
    probe = (
        "import socket,struct,sys\n"
        "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.settimeout(3);s.bind(('10.11.11.1',0))\n"
        "s.sendto(b'<134>lt-test: hello from the commune',('10.11.0.10',514))\n"
        "s.sendto(b'\\x1b'+47*b'\\0',('10.11.0.11',123));ntp=s.recv(48)\n"
        "q=struct.pack('>HHHHHH',7,256,1,0,0,0)+b'\\x0crt-dien-bien\\x00'+struct.pack('>HH',1,1)\n"
        "s.sendto(q,('10.11.0.12',53));a=s.recv(512)\n"
        "print(len(ntp), ntp[1], '.'.join(str(b) for b in a[-4:]))\n"
    )
    cp = lab.exec(COMMUNE, "python3", "-c", probe)
    assert cp.returncode == 0, cp.stderr
    size, stratum, dns_answer = cp.stdout.split()
    assert size == "48" and 0 < int(stratum) < 16
    assert dns_answer == "10.250.0.16"
    log = lab.state / "lab" / "svc" / "syslog.log"
    for _ in range(20):
        if log.exists() and "hello from the commune" in log.read_text():
            break
        time.sleep(0.1)
    assert "10.11.11.1 <134>lt-test: hello from the commune" in log.read_text()


def test_link_fault_down_and_up(addressed: LabSession) -> None:
    lab = addressed
    assert ping_soon(lab, "tslcd", "172.16.0.2")
    lab.cli("lab", "fault", PROV, "--link", "dedicated", "--down", check=True)
    try:
        assert not ping(lab, "tslcd", "172.16.0.2")
        faults = lab.status()["faults"]
        assert {"site": PROV, "target": "link", "link": "dedicated", "state": "down"} in faults
    finally:
        lab.cli("lab", "fault", PROV, "--link", "dedicated", "--up", check=True)
    assert ping_soon(lab, "tslcd", "172.16.0.2")
    for kind, (node, addr) in {"internet": ("isp", "100.64.0.46"), "lan": (COMMUNE, "10.11.0.1")}.items():
        lab.cli("lab", "fault", PROV if kind == "lan" else COMMUNE, "--link", kind, "--down", check=True)
        assert not ping(lab, "svc" if kind == "lan" else node, addr if kind != "lan" else "10.11.0.1")
    lab.cli("lab", "fault", "--clear", check=True)
    assert ping_soon(lab, "isp", "100.64.0.46") and ping_soon(lab, "svc", "10.11.0.1")
    assert lab.status()["faults"] == []


def test_sshd_fault_refuses_ssh_until_up(lab: LabSession) -> None:
    assert ssh_open(MGMT[COMMUNE])
    lab.cli("lab", "fault", COMMUNE, "--sshd", "--down", check=True)
    try:
        assert not ssh_open(MGMT[COMMUNE])
        assert ping(lab, PROV, MGMT[COMMUNE])  # the router itself still answers
        node = next(n for n in lab.status()["nodes"] if n["site"] == COMMUNE)
        assert node["daemons"] == {"zebra": True, "staticd": True, "sshd": False} and node["up"] is False
    finally:
        lab.cli("lab", "fault", COMMUNE, "--sshd", "--up", check=True)
    assert ssh_open(MGMT[COMMUNE])
    conn = connect(lab, COMMUNE)
    conn.disconnect()


def test_router_fault_stops_daemons_and_links(addressed: LabSession) -> None:
    lab = addressed
    assert ping_soon(lab, "isp", "100.64.0.46")
    session = connect(lab, COMMUNE)  # an open session dies with the router
    lab.cli("lab", "fault", COMMUNE, "--router", "--down", check=True)
    try:
        node = next(n for n in lab.status()["nodes"] if n["site"] == COMMUNE)
        assert node["up"] is False and not any(node["daemons"].values())
        assert not ping(lab, "isp", "100.64.0.46") and not ping(lab, PROV, MGMT[COMMUNE])
        assert not ssh_open(MGMT[COMMUNE])
        # Only the namespace anchor is left in the router (no daemon, no SSH session).
        assert comms_in("lt-" + COMMUNE) == {"sleep"}
        assert not session.is_alive()
    finally:
        lab.cli("lab", "fault", "--clear", COMMUNE, check=True)
    node = next(n for n in lab.status()["nodes"] if n["site"] == COMMUNE)
    assert node["up"] is True
    assert ping_soon(lab, "isp", "100.64.0.46")  # the saved config brought wan0's address back


def test_exec_requests_run_one_vtysh_command_or_the_watchdog(lab: LabSession) -> None:
    """Besides interactive vtysh, one SSH exec request runs one CLI command (and deploy's commit-confirm
    watchdog, `lt-confirm ...`, lives there)."""
    import paramiko

    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # the lab's own routers
    client.connect(MGMT[DISTRICT], username="netops", key_filename=str(lab.key), allow_agent=False,
                   look_for_keys=False, timeout=10)
    try:
        _, out, _ = client.exec_command("show version", timeout=10)
        text = out.read().decode()
        assert "FRRouting 8.4" in text and "(rt-dien-bien-phu)" in text
        _, out, _ = client.exec_command("lt-confirm status", timeout=10)
        assert out.read().decode().split()[0] in ("idle", "restored", "pending")
    finally:
        client.close()


def _exec(client: Any, command: str, stdin: str | None = None) -> tuple[int, str]:
    """One exec request: its exit status and output (``stdin`` sent, then EOF)."""
    i, o, _ = client.exec_command(command, timeout=20)
    if stdin is not None:
        i.write(stdin)
        i.channel.shutdown_write()
    out = o.read().decode().strip()
    return o.channel.recv_exit_status(), out


def test_watchdog_keeps_the_restore_point_it_is_given_and_confirms_only_a_pending_change(lab: LabSession) -> None:
    """`lt-confirm arm N -` takes the restore point on stdin (deploy sends the backup it has just read); a bad one
    arms nothing; once the timer has fired, `confirm` refuses (the device runs the restore point, not the change)."""
    import paramiko

    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # the lab's own routers
    client.connect(MGMT[DISTRICT], username="netops", key_filename=str(lab.key), allow_agent=False,
                   look_for_keys=False, timeout=10)
    try:
        assert _exec(client, "lt-confirm arm 5 -", stdin="") == (1, "snapshot failed: not a whole running config")
        assert _exec(client, "lt-confirm arm x -")[0] == 2
        assert _exec(client, "lt-confirm arm 30")[0] == 2  # no restore point announced: nothing is armed
        assert _exec(client, "lt-confirm status")[1] != "pending"
        rc, running = _exec(client, "show running-config")
        assert rc == 0 and "hostname rt-dien-bien-phu" in running
        assert _exec(client, "lt-confirm arm 30 -", stdin=running) == (0, "armed 30")
        assert _exec(client, "lt-confirm status") == (0, "pending")
        assert _exec(client, "lt-confirm confirm") == (0, "confirmed")
        rc, answer = _exec(client, "lt-confirm confirm")  # nothing pending any more: a confirm cannot be faked
        assert rc == 1 and answer == "not pending: idle", answer
        # unconfirmed: the timer fires and restores the restore point (the running config itself: no change)
        assert _exec(client, "lt-confirm arm 1 -", stdin=running) == (0, "armed 1")
        deadline = time.monotonic() + 30
        while _exec(client, "lt-confirm status")[1] == "pending" and time.monotonic() < deadline:
            time.sleep(0.3)
        rc, answer = _exec(client, "lt-confirm confirm")
        assert rc == 1 and answer.startswith("not pending: restored"), answer
        assert _exec(client, "show running-config")[1] == running
    finally:
        client.close()


def test_lab_key_matches_the_inventory_keyfile_reference(lab: LabSession) -> None:
    from conftool.inventory import load, resolve

    inv = load(lab.env["LIENTHONG_INVENTORY"])
    dev = inv.get(DISTRICT).router
    assert dev is not None and dev.credentials == "keyfile:lab/keys/netops_ed25519"
    secret = resolve(dev.credentials, base_dir=inv.base_dir, state_dir=lab.state)
    assert secret.reveal() == str(lab.key) and lab.key.stat().st_mode & 0o077 == 0
    conn = ConnectHandler(device_type=dev.device_type, host=str(dev.mgmt_address), username=dev.username,
                          key_file=secret.reveal(), use_keys=True, allow_agent=False, timeout=dev.timeout_s)
    try:
        assert conn.find_prompt() == f"{dev.hostname}#"
    finally:
        conn.disconnect()


def test_status_json_shape(lab: LabSession) -> None:
    doc = lab.status()
    assert doc["running"] is True and doc["profile"] == "small"
    roles: dict[str, list[str]] = {}
    for n in doc["nodes"]:
        assert {"site", "role", "namespace", "mgmt_address", "up", "daemons"} <= set(n)
        roles.setdefault(n["role"], []).append(n["site"])
    assert roles["router"] == ["11", "094", "03124", "03127", "095", "03148", "03151"]
    assert roles["cloud"] == ["isp", "tslcd"] and roles["services"] == ["svc"]
    assert all(n["up"] for n in doc["nodes"])
    svc = next(n for n in doc["nodes"] if n["role"] == "services")
    assert svc["daemons"] == {"syslog": True, "ntp": True, "dns": True}


def test_running_sites_and_second_up_refused(lab: LabSession) -> None:
    from conftool.lab import running_sites

    assert running_sites(lab.state) == ["11", "094", "03124", "03127", "095", "03148", "03151"]
    cp = lab.cli("lab", "up")
    assert cp.returncode == 2 and "already running" in cp.stderr
    assert lab.status()["running"] is True  # the refused up changed nothing


def test_overlap_with_the_running_lab_route_is_detected(lab: LabSession) -> None:
    from conftool.inventory import load
    from conftool.lab import LabError, profile_sites
    from conftool.lab.lab import check_overlaps
    from conftool.lab.netns import root_routes
    from conftool.lab.plan import build_plan

    inv = load(lab.env["LIENTHONG_INVENTORY"])
    plan = build_plan(inv, profile_sites(inv, "small"), "small")
    with pytest.raises(LabError, match=r"10\.250\.0\.0/20"):
        check_overlaps(plan, root_routes())  # the running lab's management route is a real root route


def test_exec_and_fault_bad_input(lab: LabSession) -> None:
    cp = lab.exec("99999", "true")
    assert cp.returncode == 2 and "not a node of the running lab" in cp.stderr
    assert lab.exec(PROV, "hostname").stdout.strip() == "rt-dien-bien"
    # Inside a router, plain `vtysh` and `vtysh -N <instance>` reach the same daemons.
    for argv in (["vtysh"], ["vtysh", "-N", "rt-dien-bien"]):
        cp = lab.exec(PROV, *argv, "-c", "show running-config")
        assert cp.returncode == 0 and "hostname rt-dien-bien" in cp.stdout, cp.stderr
    cp = lab.cli("lab", "fault", PROV, "--link", "wifi", "--down")
    assert cp.returncode == 2 and "lan, internet, dedicated" in cp.stderr
    cp = lab.cli("lab", "fault", PROV, "--router")
    assert cp.returncode == 2 and "--down or --up" in cp.stderr


def test_loss_impairment_applies_and_clears(lab: LabSession) -> None:
    """Loss on a link applies with netem or the lab's forwarder (this kernel has no sch_netem); clear undoes it."""
    cp = lab.cli("lab", "fault", PROV, "--link", "internet", "--loss", "5", "--json")
    assert cp.returncode == 0, cp.stderr
    doc = lab.status()
    node = next(n for n in doc["nodes"] if n["site"] == PROV and n["role"] == "router")
    assert any(f["state"] == "impaired" and f["loss_pct"] == 5 for f in node["faults"])
    assert doc["link_emulation"]["backend"] in ("netem", "forwarder")
    lab.cli("lab", "fault", "--clear", PROV, check=True)
    assert "netem" not in lab.exec(PROV, "tc", "qdisc", "show", "dev", "wan0").stdout
    assert lab.status()["link_emulation"]["impaired_links"] == 0
