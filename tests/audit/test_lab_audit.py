"""The audit on the real lab: a deployed small lab is clean; each fault shows up as exactly the right failed
check(s) for exactly that site and nothing else; clearing it shows a recovery in `audit diff`.

Faults go through `conftool lab fault` (DESIGN §9) or a hand edit with vtysh inside the router, and are always
undone in a finalizer (fault --clear, then a re-deploy of the site).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftool.audit.store import AuditStore
from tests.lab.conftest import LabSession

pytestmark = [pytest.mark.lab]

SITE = "03148"  # a commune of the small lab (Phường Sông Đà, district 095)
HOST = "rt-song-da"
BAD = ("fail", "error")


def audit(lab: LabSession, db: str, *args: str) -> tuple[int, dict[str, Any]]:
    cp = lab.cli("audit", "run", "--json", "--db", db, *args, timeout=240)
    assert cp.returncode in (0, 1), f"audit run → {cp.returncode}\n{cp.stdout[-2000:]}\n{cp.stderr[-3000:]}"
    return cp.returncode, json.loads(cp.stdout)


def failing(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(i["site"], i["kind"]) for i in doc["items"] if i["status"] in BAD}


def deploy(lab: LabSession, *sites: str) -> None:
    args = [x for s in sites for x in ("--site", s)]
    cp = lab.cli("deploy", "--apply", "--json", *args, timeout=300)
    assert cp.returncode == 0, f"deploy failed\n{cp.stdout[-3000:]}\n{cp.stderr[-3000:]}"


def vtysh(lab: LabSession, *lines: str) -> None:
    argv = ["vtysh", "-N", HOST, "-c", "configure terminal"]
    for line in lines:
        argv += ["-c", line]
    cp = lab.exec(SITE, *argv)
    assert cp.returncode == 0, cp.stdout + cp.stderr


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('audit') / 'lienthong.db'}"


@pytest.fixture(scope="module")
def deployed(audit_lab: LabSession) -> Iterator[LabSession]:
    deploy(audit_lab, "11")  # one device first: concurrent first deploys race on `git init` of the backup repo
    deploy(audit_lab)
    yield audit_lab


def test_deployed_lab_is_clean(deployed: LabSession, db: str, pg_url: str) -> None:
    rc, doc = audit(deployed, db)
    assert failing(doc) == set(), [i for i in doc["items"] if i["status"] in BAD]
    assert rc == 0
    s = doc["summary"]
    n = sum(1 for x in deployed.status()["nodes"] if x["role"] == "router")
    assert s["links"]["internet"] == {"ok": n, "total": n, "not_probed": 0}
    assert s["links"]["dedicated"] == {"ok": n, "total": n, "not_probed": 0}
    lan = s["links"]["lan"]
    with_host = {x["site"] for x in deployed.status()["nodes"] if x["role"] == "host"} | {"11"}  # 11: services
    assert lan == {"ok": len(with_host), "total": len(with_host), "not_probed": n - len(with_host)}
    assert SITE in with_host
    assert s["meeting_ready"] == {"ok": n, "total": n} and s["drift"] == 0 and s["compliance_pct"] == 100
    assert f"Internet {n}/{n} · TSLCD {n}/{n} · meeting-ready {n}/{n} · drift 0 · compliance 100 %" in s["line"]
    kinds = {(i["site"], i["kind"]) for i in doc["items"] if i["status"] == "ok"}
    for want in ("reachability:internet", "reachability:dedicated", "device:interfaces", "device:tslcd-routes",
                 "device:default-route", "drift:config", "compliance:LT-ACL-01", "compliance:LT-PWD-01"):
        assert (SITE, want) in kinds
    skipped = [i for i in doc["items"] if i["status"] == "skipped"]
    assert skipped and all(i["detail"] for i in skipped), "a skip always says why"
    # the stored run reads the same from PostgreSQL as from SQLite
    with AuditStore(db) as a:
        rec = a.run(doc["summary"]["run"])
    rec.id = None
    with AuditStore(pg_url) as b:
        back = b.run(b.save(rec))
    assert [f.as_item() for f in back.findings] == [f.as_item() for f in rec.findings]


def _link_down(kind: str) -> Callable[[LabSession], None]:
    return lambda lab: lab.cli("lab", "fault", SITE, "--link", kind, "--down", check=True)


def _settle(lab: LabSession, kind: str) -> None:
    """After a splice the far side's neighbour entry is new and its ARP crosses the lossy link itself (a lab
    artefact: a NOC's probes do not ARP across the link they judge). Wait until one echo comes back along the
    audit's own probe path, so the burst measures the link's loss and not an unresolved neighbour; the audit's
    own burst is never retried."""
    site = _site(lab)
    if kind == "internet":
        node, dst = "isp", next(lk for lk in site.links if lk.kind.value == "internet").address
    else:  # TSLCD: from the province LAN (lt-svc) to the site's LAN gateway, as the audit probes it
        node, dst = "svc", next(lk for lk in site.links if lk.kind.value == "lan").address
    for _ in range(30):
        cp = lab.exec(node, "ping", "-n", "-c", "1", "-W", "1", str(dst))
        if cp.returncode == 0:
            return
    raise AssertionError(f"{dst} never answered from {node} after the impairment of the {kind} link")


def _site(lab: LabSession) -> Any:
    from conftool.inventory import load

    return load(Path(lab.env["LIENTHONG_INVENTORY"])).get(SITE)


def _impair(kind: str, *args: str) -> Callable[[LabSession], None]:
    """Loss/delay through the lab's link emulator (per direction: 30 % each way ≈ 51 % of round trips)."""
    def inject(lab: LabSession) -> None:
        lab.cli("lab", "fault", SITE, "--link", kind, *args, check=True)
        _settle(lab, kind)

    return inject


def _router_down(lab: LabSession) -> None:
    lab.cli("lab", "fault", SITE, "--router", "--down", check=True)


def _sshd_down(lab: LabSession) -> None:
    lab.cli("lab", "fault", SITE, "--sshd", "--down", check=True)


def _hand_edit(lab: LabSession) -> None:
    vtysh(lab, "interface wan0", "description edited by hand")


def _compliance_removed(lab: LabSession) -> None:
    vtysh(lab, "no service password-encryption")


S = SITE
FAULTS: list[tuple[str, Callable[[LabSession], None], set[tuple[str, str]]]] = [
    ("dedicated link down", _link_down("dedicated"),
     {(S, "reachability:dedicated"), (S, "device:interfaces"), (S, "device:tslcd-routes")}),
    ("internet link down", _link_down("internet"),
     {(S, "reachability:internet"), (S, "device:interfaces"), (S, "device:default-route")}),
    ("lan link down", _link_down("lan"), {(S, "reachability:lan"), (S, "device:interfaces")}),
    ("30 % loss on internet", _impair("internet", "--loss", "30"), {(S, "reachability:internet")}),
    ("300 ms delay on internet", _impair("internet", "--delay", "300"), {(S, "reachability:internet")}),
    ("30 % loss on dedicated", _impair("dedicated", "--loss", "30"), {(S, "reachability:dedicated")}),
    ("300 ms delay on dedicated", _impair("dedicated", "--delay", "300"), {(S, "reachability:dedicated")}),
    ("router down", _router_down,
     {(S, "device:ssh"), (S, "reachability:internet"), (S, "reachability:dedicated"), (S, "reachability:lan")}),
    ("sshd down", _sshd_down, {(S, "device:ssh")}),
    ("config line changed by hand", _hand_edit, {(S, "drift:config")}),
    ("compliance line removed by hand", _compliance_removed, {(S, "drift:config"), (S, "compliance:LT-PWD-01")}),
]

# What the burst measured, honestly: 30 % loss each way loses about 51 % of 100 round trips (±5 % one standard
# deviation; the range is ±5 σ); 300 ms each way adds 600 ms to every round trip and loses nothing.
_LOSSY: Callable[[dict[str, Any]], bool] = lambda d: 25 <= d["loss_pct"] <= 80  # noqa: E731
_SLOW: Callable[[dict[str, Any]], bool] = lambda d: d["loss_pct"] <= 1 and 600 <= d["rtt_ms"] <= 1000  # noqa: E731
METRICS: dict[str, tuple[str, Callable[[dict[str, Any]], bool]]] = {
    "30 % loss on internet": ("reachability:internet", _LOSSY),
    "300 ms delay on internet": ("reachability:internet", _SLOW),
    "30 % loss on dedicated": ("reachability:dedicated", _LOSSY),
    "300 ms delay on dedicated": ("reachability:dedicated", _SLOW),
}


@pytest.mark.parametrize(("name", "inject", "expected"), FAULTS, ids=[f[0] for f in FAULTS])
def test_fault_shows_as_exactly_its_check(deployed: LabSession, db: str, name: str,
                                          inject: Callable[[LabSession], None],
                                          expected: set[tuple[str, str]]) -> None:
    try:
        inject(deployed)
        rc, doc = audit(deployed, db)
        assert failing(doc) == expected, name
        assert rc == 1
        if name == "router down":
            items = {i["kind"]: i for i in doc["items"] if i["site"] == SITE}
            assert items["device:ssh"]["status"] == "error"
            assert items["drift:config"]["status"] == "skipped"
            assert items["drift:config"]["detail"] == "device unreachable"
        if name in METRICS:
            kind, ok = METRICS[name]
            data = next(i["data"] for i in doc["items"] if i["site"] == SITE and i["kind"] == kind)
            assert data["sent"] == 100 and ok(data), (name, data)
    finally:
        deployed.cli("lab", "fault", "--clear", SITE)
        if name.endswith("by hand"):
            deploy(deployed, SITE)
    # a router that was powered back on needs a few seconds until staticd has installed its routes again
    deadline = time.monotonic() + 30
    while True:
        rc, doc = audit(deployed, db, "--site", SITE, "--no-store")
        if not failing(doc) or time.monotonic() > deadline:
            break
        time.sleep(2)
    rc, doc = audit(deployed, db)
    assert failing(doc) == set() and rc == 0, f"{name} not cleared"
    cp = deployed.cli("audit", "diff", "--db", db, "--json")
    assert cp.returncode == 0, cp.stdout + cp.stderr
    d = json.loads(cp.stdout)
    assert {(i["site"], i["kind"]) for i in d["items"] if i["change"] == "recovery"} == expected
    assert d["summary"]["new_failures"] == 0


def test_terminal_view_and_site_selection(deployed: LabSession, db: str) -> None:
    cp = deployed.cli("audit", "run", "--db", db, "--site", SITE, "--check", "reachability,drift",
                      timeout=120)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert "Internet 1/1 · TSLCD 1/1 · meeting-ready 1/1 · drift 0" in cp.stdout
    cp = deployed.cli("audit", "run", "--db", db, timeout=120)
    assert "lab running: auditing its" in cp.stdout
    cp = deployed.cli("audit", "history", "--db", db, "--json")
    assert json.loads(cp.stdout)["summary"]["runs"] >= 2


def test_captured_frr_output_still_parses(deployed: LabSession) -> None:
    """Keeps the captured case-table data honest: today's FRR output parses to the same shape."""
    from conftool.audit.facts import parse_frr_interfaces, parse_frr_routes

    out = deployed.exec(SITE, "vtysh", "-N", HOST, "-c", "show interface json")
    ifs = parse_frr_interfaces(out.stdout)
    assert ifs["tslcd0"].oper_up and any(a.startswith("172.16.") for a in ifs["tslcd0"].addresses)
    routes = parse_frr_routes(deployed.exec(SITE, "vtysh", "-N", HOST, "-c", "show ip route json").stdout)
    assert any(r.prefix == "0.0.0.0/0" and r.usable for r in routes)
    data = Path(__file__).parent / "data"
    captured = parse_frr_interfaces((data / "frr-show-interface.json").read_text())
    assert {"lan0", "wan0", "tslcd0", "mgmt0"} <= set(captured) & set(ifs)


def test_html_report_of_a_lab_run_with_a_fault(deployed: LabSession, db: str, tmp_path: Path) -> None:
    """Issue 7: the report of a real lab audit with an injected fault, opened in Debian's Chromium."""
    from playwright.sync_api import sync_playwright

    deployed.cli("lab", "fault", SITE, "--link", "dedicated", "--down", check=True)
    try:
        rc, doc = audit(deployed, db)
    finally:
        deployed.cli("lab", "fault", "--clear", SITE)
    assert rc == 1 and (SITE, "reachability:dedicated") in failing(doc)
    sites = {i["site"] for i in doc["items"]}
    out = tmp_path / "report.html"
    cp = deployed.cli("audit", "report", "--html", str(out), "--db", db)
    assert cp.returncode == 0 and out.exists(), cp.stdout + cp.stderr
    with sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path="/usr/bin/chromium", headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        try:
            page = ctx.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(out.as_uri())
            page.wait_for_load_state("load")
            tile = page.locator('[data-kpi="dedicated"]')
            assert tile.locator(".total").inner_text() == str(len(sites))
            assert tile.locator(".ok").inner_text() == str(len(sites) - 1)
            rows = page.locator("#failures tr[data-site]")
            assert SITE in {rows.nth(i).get_attribute("data-site") for i in range(rows.count())}
            assert page.locator(f'#tree span[data-site="{SITE}"]').get_attribute("data-state") == "fail"
            assert errors == []
        finally:
            ctx.close()


def test_scheduled_run_takes_backups(deployed: LabSession, db: str) -> None:
    """Issue 7: `audit schedule --backup` audits and commits the lab routers' running configs in one run."""
    cp = deployed.cli("audit", "schedule", "--cron", "0 */4 * * *", "--once", "--backup", "--db", db, "--json",
                      timeout=300)
    assert cp.returncode in (0, 1), cp.stdout + cp.stderr
    doc = json.loads(cp.stdout)["summary"]
    assert doc["run"] is not None and doc["backup"], doc
    repo = deployed.state / "backups"
    routers = [n for n in deployed.status()["nodes"] if n["role"] == "router"]
    saved = list(repo.glob("*/*.cfg"))
    assert len(saved) == len(routers)
    log = subprocess.run(["git", "-C", str(repo), "log", "--format=%s"], capture_output=True, text=True).stdout
    assert "scheduled backup" in log
    assert "hostname rt-song-da" in (repo / SITE / f"{HOST}.cfg").read_text()


# ---- hosts (meeting-room PCs, the province server) ---------------------------------------------------------
def _hosts(lab: LabSession) -> dict[str, dict[str, Any]]:
    return {n["hostname"]: n for n in lab.status()["nodes"] if n["role"] == "host"}


def _host_items(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(i["device"], i["kind"]): i for i in doc["items"] if i["check"] == "hosts"}


def test_hosts_with_nothing_installed_are_skipped_with_the_fix(deployed: LabSession, db: str) -> None:
    hosts = _hosts(deployed)
    assert len(hosts) >= 2
    rc, doc = audit(deployed, db, "--check", "hosts", "--no-store")
    items = _host_items(doc)
    assert rc == 0 and failing(doc) == set()
    for name, node in hosts.items():
        assert items[(name, "hosts:ssh")]["status"] == "ok"
        time_item = items[(name, "hosts:time")]
        assert time_item["status"] == "skipped" and "conftool play baseline" in time_item["detail"], time_item
        if node["device_role"] == "meeting-endpoint":
            agent = items[(name, "hosts:agent")]
            assert agent["status"] == "skipped" and "conftool play meeting-endpoint" in agent["detail"], agent
        else:
            assert (name, "hosts:agent") not in items


def test_hosts_chronyd_in_sync_is_ok(deployed: LabSession, db: str) -> None:
    """A real chronyd (`-x`: it never sets the machine clock) in the province server's namespaces, synced to the
    lab's NTP server (lt-svc) on the province LAN: its time item is `ok`, everything else is unchanged."""
    srv = next(n for n in _hosts(deployed).values() if n["device_role"] == "server")
    conf = ("server 10.11.0.11 iburst minpoll -2 maxpoll -2\npidfile /run/lt-audit-chronyd.pid\n"
            "bindcmdaddress 127.0.0.1\nbindcmdaddress /\n")
    cp = deployed.exec(srv["hostname"], "sh", "-c",
                       f"printf '{conf}' > /run/lt-audit-chrony.conf && "
                       "chronyd -x -f /run/lt-audit-chrony.conf && sleep 0.5 && cat /run/lt-audit-chronyd.pid")
    assert cp.returncode == 0, cp.stdout + cp.stderr
    pid = int(cp.stdout.split()[-1])
    try:
        # chronyc waitsync: wait (≤ 60 × 1 s) until chronyd has synchronised — no retry of the audit itself
        cp = deployed.exec(srv["hostname"], "chronyc", "waitsync", "60", "0", "0", "1", timeout=90)
        assert cp.returncode == 0, cp.stdout + cp.stderr
        rc, doc = audit(deployed, db, "--check", "hosts", "--no-store")
        items = _host_items(doc)
        t = items[(srv["hostname"], "hosts:time")]
        assert t["status"] == "ok" and t["data"]["reference"] == "10.11.0.11" and t["data"]["province_ntp"], t
        assert abs(t["data"]["offset_s"]) < 0.1 and t["data"]["leap"] == "Normal"
        assert rc == 0 and failing(doc) == set()
        others = [i for (dev, kind), i in items.items() if kind == "hosts:time" and dev != srv["hostname"]]
        assert others and all(i["status"] == "skipped" for i in others)
    finally:
        import os
        import signal

        os.kill(pid, signal.SIGTERM)


def test_host_sshd_down_fails_for_exactly_that_host(deployed: LabSession, db: str) -> None:
    """Hosts have no `lab fault`: the host's sshd (which is also its namespace anchor) is stopped by its pid from
    the lab state. Runs last in this module: the host stays down until `lab down`."""
    import os
    import signal

    from conftool.lab.lab import current

    pc = next(n for n in _hosts(deployed).values() if n["site"] == SITE and n["device_role"] == "meeting-endpoint")
    st = current(deployed.state)
    assert st is not None
    proc = st.proc(pc["hostname"], "sshd")
    assert proc is not None and proc.alive()
    os.kill(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while proc.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    rc, doc = audit(deployed, db)
    assert rc == 1
    assert failing(doc) == {(SITE, "hosts:ssh")}
    bad = [i for i in doc["items"] if i["status"] in BAD]
    assert [i["device"] for i in bad] == [pc["hostname"]] and bad[0]["status"] == "fail", bad
    items = _host_items(doc)
    assert items[(pc["hostname"], "hosts:time")]["detail"] == "host unreachable"
