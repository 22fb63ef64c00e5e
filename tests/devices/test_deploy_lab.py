"""Deploy on the real lab: FRR routers over SSH/Netmiko, routing that really works, idempotence, rollbacks.

Order matters inside this module (one lab, deployed once): dry run → apply → end-to-end routing → re-deploy sends
nothing → faults (sshd down, a line FRR rejects, a change that cuts management, the management link or a data
link going down mid-deploy) each leave the affected router exactly as its backup and the others deployed →
canaries (a failing canary stops the rest untouched; passing canaries let the rest deploy).
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.lab.conftest import CONFTOOL, REPO, LabSession

pytestmark = pytest.mark.lab

PROVINCE_SVC = "10.11.0.10"  # SOC syslog collector in the province services namespace


def deploy(lab: LabSession, *args: str, env: dict[str, str] | None = None, timeout: float = 300) -> dict[str, Any]:
    cp = lab.cli("deploy", *args, "--json", timeout=timeout) if env is None else _cli_env(lab, env, "deploy",
                                                                                         *args, "--json")
    assert cp.stdout.strip(), cp.stderr
    doc = dict(json.loads(cp.stdout))
    doc["_rc"] = cp.returncode
    return doc


def _cli_env(lab: LabSession, extra: dict[str, str], *args: str) -> Any:
    import subprocess

    from tests.lab.conftest import CONFTOOL

    return subprocess.run([*CONFTOOL, *args], capture_output=True, text=True, env={**lab.env, **extra},
                          timeout=400, cwd=REPO)


def by_device(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {i["device"]: i for i in doc["items"]}


def running(lab: LabSession, site: str) -> str:
    cp = lab.exec(site, "vtysh", "-c", "show running-config")
    assert cp.returncode == 0, cp.stderr
    return cp.stdout


def lab_sites(lab: LabSession) -> list[str]:
    return [n["site"] for n in lab.status()["nodes"] if n["role"] == "router"]


def ping_from(lab: LabSession, site: str, target: str, source: str | None = None) -> bool:
    extra = ["-I", source] if source else []
    return lab.exec(site, "ping", "-c", "2", "-W", "1", "-i", "0.2", *extra, target).returncode == 0


@pytest.fixture(scope="module")
def deployed(lab_session: LabSession) -> Iterator[LabSession]:
    if lab_session.is_up:
        lab_session.down()
    lab_session.up()  # a fresh lab: routers hold only their bootstrap config
    # staticd is zebra's client from the start: a staticd that raced zebra's start retried only 10 s later
    # (lib/zclient.c), and every static route of the first deploy waited for that (conftool/lab/router.py).
    deadline = time.monotonic() + 3.0  # a moment for staticd's first (scheduled) connect; not the 10 s retry
    for site in lab_sites(lab_session):
        while "static" not in (out := lab_session.exec(site, "vtysh", "-c", "show zebra client summary").stdout):
            assert time.monotonic() < deadline, (site, "staticd is not zebra's client", out)
            time.sleep(0.2)
    dry = deploy(lab_session, "--dry-run")
    assert dry["summary"]["changed"] == len(lab_sites(lab_session)), [
        (i["device"], i["status"], i["detail"]) for i in dry["items"] if i["status"] != "changed"]
    assert all(i["commands"] and i["diff"] for i in dry["items"])
    doc = deploy(lab_session, "--apply")
    assert doc["_rc"] == 0, doc
    assert doc["summary"]["changed"] == len(lab_sites(lab_session)), doc
    # every step ran, and the settle ended on zebra's state, not at its cap (unparsed output waits the whole cap)
    from conftool.devices.deploy import DeployOptions

    cap = DeployOptions().settle_seconds
    for i in doc["items"]:
        assert set(i["phases"]) == {"connect", "backup", "arm", "apply", "verify", "settle", "probe_confirm",
                                    "save"}, i["phases"]
        assert 0.1 <= i["phases"]["settle"] < cap - 0.5, (i["device"], i["phases"])
    # With staticd connected, routes reach the kernel within a few polls (it was 7–8 s, the zclient retry).
    assert statistics.median(i["phases"]["settle"] for i in doc["items"]) < 3.0, doc["items"]
    yield lab_session
    lab_session.down()  # later modules start from a fresh lab


def test_dry_run_changed_nothing_and_apply_saved(deployed: LabSession) -> None:
    # write memory happened: the saved file equals the running config
    from conftool.devices.normalize import normalize

    site = lab_sites(deployed)[-1]
    cp = deployed.exec(site, "sh", "-c", "cat /etc/frr/*/frr.conf 2>/dev/null || cat /etc/frr/frr.conf")
    saved, now = cp.stdout, running(deployed, site)
    assert "ip route" in now and "ip route" in saved
    assert normalize(saved, "frr") == normalize(now, "frr")


def test_routing_works_end_to_end(deployed: LabSession) -> None:
    from conftool.inventory import load

    inv = load(REPO / "inventory" / "dien-bien")
    communes = [s for s in lab_sites(deployed) if inv.get(s).level == "commune"]
    c = inv.get(communes[0])
    lan = c.link("lan")
    assert lan is not None and lan.address is not None
    # the commune LAN reaches the province services over TSLCD …
    assert ping_from(deployed, c.id, PROVINCE_SVC, str(lan.address))
    route = deployed.exec(c.id, "ip", "route", "get", PROVINCE_SVC).stdout
    assert "tslcd0" in route, route
    # … and the Internet over its own line
    other = inv.get(communes[1]).link("internet")
    assert other is not None and other.address is not None
    assert "wan0" in deployed.exec(c.id, "ip", "route", "get", str(other.address)).stdout
    assert ping_from(deployed, c.id, str(other.address))
    # the province services are NOT reachable over the Internet path
    assert not ping_from(deployed, "isp", PROVINCE_SVC)
    deployed.cli("lab", "fault", c.id, "--link", "dedicated", "--down", check=True)
    try:
        assert not ping_from(deployed, c.id, PROVINCE_SVC, str(lan.address))  # no fallback over the Internet
    finally:
        deployed.cli("lab", "fault", c.id, "--link", "dedicated", "--up", check=True)


def test_second_deploy_is_unchanged_and_sends_no_config(deployed: LabSession) -> None:
    doc = deploy(deployed, "--apply")
    assert doc["_rc"] == 0
    assert {i["status"] for i in doc["items"]} == {"unchanged"}, doc["items"]
    logs = Path(doc["summary"]["session_logs"])
    files = list(logs.glob("*.log"))
    assert len(files) == len(doc["items"])
    for f in files:
        text = f.read_text(errors="replace")
        assert "show running-config" in text
        assert "(config" not in text and "configure terminal" not in text, f.name


def test_sshd_down_is_unreachable_others_fine(deployed: LabSession) -> None:
    victim = lab_sites(deployed)[-1]
    before = running(deployed, victim)
    deployed.cli("lab", "fault", victim, "--sshd", "--down", check=True)
    try:
        doc = deploy(deployed, "--apply")
    finally:
        deployed.cli("lab", "fault", victim, "--sshd", "--up", check=True)
    items = doc["items"]
    assert doc["_rc"] == 1
    bad = [i for i in items if i["status"] != "unchanged"]
    assert [i["site"] for i in bad] == [victim] and bad[0]["status"] == "unreachable"
    assert running(deployed, victim) == before


def _templates_with(tmp_path: Path, extra: str, roles: tuple[str, ...] = ("cpe",)) -> Path:
    """A copy of the templates whose FRR role templates (commune `cpe` by default) add ``extra`` (Jinja text)
    after the routing block."""
    tdir = tmp_path / "templates"
    shutil.copytree(REPO / "templates", tdir)
    for role in roles:
        f = tdir / "frr" / f"{role}.j2"
        f.write_text(f.read_text() + "{% block routing %}{{ super() }}" + extra + "{% endblock %}\n")
    return tdir


def test_rejected_line_rolls_back_only_affected(deployed: LabSession, tmp_path: Path) -> None:
    from conftool.inventory import load

    inv = load(REPO / "inventory" / "dien-bien")
    cpes = [s for s in lab_sites(deployed) if inv.get(s).level == "commune"]
    before = {s: running(deployed, s) for s in cpes}
    # an interface change (so the plan is not empty) followed by a line FRR's vtysh refuses
    tdir = _templates_with(tmp_path, "ip route 192.0.2.128/25 Null0 250\nthis-is-not-an-frr-command\n")
    doc = deploy(deployed, "--apply", env={"LIENTHONG_TEMPLATES": str(tdir)})
    st = by_device(doc)
    assert doc["_rc"] == 1
    for s in cpes:
        item = next(i for i in st.values() if i["site"] == s)
        assert item["status"] == "rolled_back", item
        assert "rejected" in item["detail"]
        assert running(deployed, s) == before[s]
    assert all(i["status"] == "unchanged" for i in st.values() if i["site"] not in cpes)


def test_change_that_cuts_management_is_restored_by_the_device(deployed: LabSession, tmp_path: Path) -> None:
    from conftool.inventory import load

    inv = load(REPO / "inventory" / "dien-bien")
    victim = next(s for s in lab_sites(deployed) if inv.get(s).level == "commune")
    before, saved_before = running(deployed, victim), saved(deployed, victim)
    noc = str(inv.services.noc_prefix)
    # a more specific blackhole for the NOC prefix: replies to the NOC vanish, the SSH session dies
    tdir = _templates_with(tmp_path, f"ip route {noc} Null0\n")
    doc = _cli_env(deployed, {"LIENTHONG_TEMPLATES": str(tdir)}, "deploy", "--apply", "--site", victim,
                   "--confirm-timeout", "15", "--json")
    item = json.loads(doc.stdout)["items"][0]
    assert item["status"] == "rolled_back", item
    assert "watchdog" in item["detail"] or "restored" in item["detail"]
    assert running(deployed, victim) == before
    assert saved(deployed, victim) == saved_before  # never saved: the change was never confirmed


def saved(lab: LabSession, site: str) -> str:
    """The router's startup config (what `write memory` wrote), as FRR keeps it in the router's /etc/frr."""
    cp = lab.exec(site, "sh", "-c", "cat /etc/frr/*/frr.conf 2>/dev/null || cat /etc/frr/frr.conf")
    assert cp.returncode == 0, cp.stderr
    return cp.stdout


def test_unconfirmed_change_is_never_saved(deployed: LabSession, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The session is lost right before the confirm (injected: the confirm over the new session fails without
    confirming). Deploy saves only after the confirm, so the startup config must still be the old one; the
    running config is restored and the watchdog stopped. (With the earlier order, write memory then confirm,
    the new config stayed saved: the gap this closes.)"""
    from conftool.devices import confirm, runner
    from conftool.devices.deploy import DeployOptions
    from conftool.devices.session import DeviceError
    from conftool.inventory import load

    inv = load(REPO / "inventory" / "dien-bien")
    victim = next(s for s in lab_sites(deployed) if inv.get(s).level == "commune")
    run_before, saved_before = running(deployed, victim), saved(deployed, victim)
    monkeypatch.setenv("LIENTHONG_TEMPLATES", str(_templates_with(tmp_path, EXTRA_ROUTE + "\n")))
    monkeypatch.setenv("LIENTHONG_STATE", str(deployed.state))
    calls: list[str] = []

    def lost_before_confirm(self: confirm.FrrWatchdog) -> None:
        calls.append(self.params["host"])
        raise DeviceError("injected: SSH session lost before the confirm")

    monkeypatch.setattr(confirm.FrrWatchdog, "confirm_over_new_session", lost_before_confirm)
    opts = DeployOptions(dry_run=False, confirm_seconds=30, log_dir=tmp_path / "logs")
    [res] = runner.deploy(inv, inv.select([victim]), opts)
    assert calls, "the deploy never reached the confirm"
    assert res.status == "rolled_back" and "injected" in res.detail, res
    assert running(deployed, victim) == run_before
    assert saved(deployed, victim) == saved_before
    assert EXTRA_ROUTE not in saved(deployed, victim)
    assert _watchdog_file(deployed, victim, "pending") is None  # confirmed after the restore: no late re-apply
    log = (tmp_path / "logs" / f"{res.device}.log").read_text(errors="replace")
    assert EXTRA_ROUTE in log and "write mem" not in log


# --- faults during a deploy, and canaries ------------------------------------------------------------------------
# Each test below leaves the lab as the module found it (every router as intended), so their order is free.

EXTRA_ROUTE = "ip route 192.0.2.128/25 Null0 250"  # TEST-NET-1, harmless: it makes every router's plan non-empty
ALL_ROLES = ("core", "edge", "cpe")


def _converge(lab: LabSession) -> None:
    """Back to the real templates: every router as intended (some were left changed on purpose by a test)."""
    doc = deploy(lab, "--apply")
    assert doc["_rc"] == 0, [(i["device"], i["status"], i["detail"]) for i in doc["items"]]


def _wait_for(pred: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _watchdog_file(lab: LabSession, site: str, name: str) -> Path | None:
    """A file of the router's commit-confirm watchdog (lt-confirm keeps them in the automation user's home)."""
    return next((lab.state / "lab" / "routers" / site).glob(f"**/.lt-confirm/{name}"), None)


def _namespace(lab: LabSession, site: str) -> str:
    return str(next(n["namespace"] for n in lab.status()["nodes"] if n["site"] == site))


def _mgmt_link(lab: LabSession, site: str, up: bool) -> None:
    # `conftool lab fault` has no management-link fault (DESIGN §9 lists lan|internet|dedicated), so the test
    # takes the router's own mgmt0 down inside the lab's namespace, as a cut cable on the router side would.
    subprocess.run(["ip", "-n", _namespace(lab, site), "link", "set", "mgmt0", "up" if up else "down"],
                   check=True, timeout=10)


@pytest.mark.parametrize("routes", [pytest.param(1, id="cut-after-apply"),
                                    pytest.param(300, id="cut-mid-send", marks=pytest.mark.slow)])
def test_links_down_mid_deploy(deployed: LabSession, tmp_path: Path, routes: int) -> None:
    """Management link cut during one router's apply → that router is restored and reported rolled_back; a data
    link going down during another router's deploy does not stop it; every other router is deployed.

    With one changed line the cut lands during apply, verify or the settle before the new-session probe and
    confirm (which then cannot log in); with 300 lines it lands while Netmiko is still sending (the session
    stalls, then times out or resumes after the device restored itself — verify then fails and deploy restores
    over SSH). Either way the change was never confirmed, so it was never saved."""
    from conftool.inventory import load

    inv = load(REPO / "inventory" / "dien-bien")
    sites = lab_sites(deployed)
    cpes = [s for s in sites if inv.get(s).level == "commune"]
    cut, data = cpes[0], cpes[1]
    before = {s: running(deployed, s) for s in sites}
    saved_before = saved(deployed, cut)
    more = "".join(f"ip route 198.18.{i // 256}.{i % 256}/32 Null0 250\n" for i in range(routes - 1))  # RFC 2544
    tdir = _templates_with(tmp_path, EXTRA_ROUTE + "\n" + more)
    proc = subprocess.Popen([*CONFTOOL, "deploy", "--apply", "--confirm-timeout", "15", "--json"],
                            env={**deployed.env, "LIENTHONG_TEMPLATES": str(tdir)}, cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    mgmt_down = data_down = False
    try:
        # The watchdog is armed right before the first config line: cut management then, mid-apply.
        _wait_for(lambda: _watchdog_file(deployed, cut, "pending"), 120, f"{cut}'s deploy to start applying")
        _mgmt_link(deployed, cut, up=False)
        mgmt_down = True
        deployed.cli("lab", "fault", data, "--link", "dedicated", "--down", check=True)
        data_down = True
        # Deploy cannot confirm a router it cannot reach: the device restores its backup by itself. Keep the
        # link down until then, so the SSH session really is lost (longer than a TCP retransmit would bridge).
        last = _wait_for(lambda: (f := _watchdog_file(deployed, cut, "last")) and f.read_text(), 90,
                         f"{cut}'s watchdog to restore the backup")
        assert last.startswith("restored"), last
        _mgmt_link(deployed, cut, up=True)
        mgmt_down = False
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        if mgmt_down:
            _mgmt_link(deployed, cut, up=True)
        if data_down:
            deployed.cli("lab", "fault", data, "--link", "dedicated", "--up")
    assert out.strip(), err
    doc = json.loads(out)
    assert proc.returncode == 1
    st = {i["site"]: i for i in doc["items"]}
    assert st[cut]["status"] == "rolled_back", st[cut]
    assert st[cut]["error"] and "restored" in st[cut]["detail"], st[cut]
    if routes > 1:  # the cut really hit the session while it was sending, not the probe after it
        assert "new SSH session" not in st[cut]["detail"], st[cut]
    assert running(deployed, cut) == before[cut]
    assert saved(deployed, cut) == saved_before
    # the data link was down while its router was deployed: config is config, the deploy went through …
    assert st[data]["status"] == "changed", st[data]
    assert EXTRA_ROUTE in running(deployed, data)
    # … and with the link back the commune reaches the province over TSLCD
    lan = inv.get(data).link("lan")
    assert lan is not None and lan.address is not None
    assert ping_from(deployed, data, PROVINCE_SVC, str(lan.address))
    for s in cpes[2:]:
        assert st[s]["status"] == "changed", st[s]
        assert EXTRA_ROUTE in running(deployed, s)
    assert all(st[s]["status"] == "unchanged" for s in sites if s not in cpes)
    assert doc["summary"]["rolled_back"] == 1 and doc["summary"]["changed"] == len(cpes) - 1
    _converge(deployed)


def _check_doc_shape(doc: dict[str, Any], n: int) -> None:
    """DESIGN §9: {"summary": {...counts...}, "items": [{"site", "device", "kind", "status", "detail"}]}."""
    assert set(doc) >= {"summary", "items"}
    assert doc["summary"]["total"] == len(doc["items"]) == n
    statuses = {"changed", "unchanged", "rolled_back", "failed", "unreachable", "unmanaged"}
    for i in doc["items"]:
        assert {"site", "device", "kind", "status", "detail"} <= set(i), i
        assert i["kind"] == "deploy" and i["status"] in statuses
    assert sum(doc["summary"][k] for k in statuses) == n


def test_canary_failure_stops_the_rest(deployed: LabSession, tmp_path: Path) -> None:
    sites = lab_sites(deployed)
    order = deploy(deployed, "--dry-run")["items"]  # deploy order: the canary stage is its head
    canary = order[0]["device"]
    before = {s: running(deployed, s) for s in sites}
    # every router gets a change; the canary also gets a line FRR rejects
    bad = "{% if device.hostname == '" + canary + "' %}this-is-not-an-frr-command\n{% endif %}"
    env = {"LIENTHONG_TEMPLATES": str(_templates_with(tmp_path, EXTRA_ROUTE + "\n" + bad, ALL_ROLES))}
    dry = deploy(deployed, "--dry-run", env=env)
    assert dry["summary"]["changed"] == len(sites)  # without the canary stop, every router would be changed
    doc = deploy(deployed, "--apply", "--canary", "1", env=env)
    assert doc["_rc"] == 1
    _check_doc_shape(doc, len(sites))
    items = by_device(doc)
    assert items[canary]["status"] == "rolled_back" and "rejected" in items[canary]["detail"], items[canary]
    rest = [i for i in doc["items"] if i["device"] != canary]
    for i in rest:
        assert i["status"] == "failed" and "not attempted" in i["detail"], i
        assert i["commands"] == []
    assert doc["summary"]["rolled_back"] == 1 and doc["summary"]["failed"] == len(sites) - 1
    for s in sites:
        assert running(deployed, s) == before[s], s
    # not even connected to: only the canary has a session log
    logs = Path(doc["summary"]["session_logs"])
    assert {f.stem for f in logs.glob("*.log")} == {canary}


def test_canary_success_deploys_the_rest(deployed: LabSession, tmp_path: Path) -> None:
    sites = lab_sites(deployed)
    env = {"LIENTHONG_TEMPLATES": str(_templates_with(tmp_path, EXTRA_ROUTE + "\n", ALL_ROLES))}
    doc = deploy(deployed, "--apply", "--canary", "2", env=env)
    assert doc["_rc"] == 0, doc["items"]
    _check_doc_shape(doc, len(sites))
    assert {i["status"] for i in doc["items"]} == {"changed"}
    assert doc["summary"]["changed"] == len(sites)
    for s in sites:
        assert EXTRA_ROUTE in running(deployed, s), s
    logs = Path(doc["summary"]["session_logs"])
    assert {f.stem for f in logs.glob("*.log")} == {i["device"] for i in doc["items"]}
    _converge(deployed)
