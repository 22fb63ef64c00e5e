"""Deploy on the real lab: FRR routers over SSH/Netmiko, routing that really works, idempotence, rollbacks.

Order matters inside this module (one lab, deployed once): dry run → apply → end-to-end routing → re-deploy sends
nothing → faults (sshd down, a line FRR rejects, a change that cuts management) each leave the affected router
exactly as its backup and the others deployed.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.lab.conftest import REPO, LabSession

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
    dry = deploy(lab_session, "--dry-run")
    assert dry["summary"]["changed"] == len(lab_sites(lab_session)), [
        (i["device"], i["status"], i["detail"]) for i in dry["items"] if i["status"] != "changed"]
    assert all(i["commands"] and i["diff"] for i in dry["items"])
    doc = deploy(lab_session, "--apply")
    assert doc["_rc"] == 0, doc
    assert doc["summary"]["changed"] == len(lab_sites(lab_session)), doc
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


def _templates_with(tmp_path: Path, extra: str) -> Path:
    """A copy of the templates whose commune (cpe) FRR template adds ``extra`` after the routing block."""
    tdir = tmp_path / "templates"
    shutil.copytree(REPO / "templates", tdir)
    f = tdir / "frr" / "cpe.j2"
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
    before = running(deployed, victim)
    noc = str(inv.services.noc_prefix)
    # a more specific blackhole for the NOC prefix: replies to the NOC vanish, the SSH session dies
    tdir = _templates_with(tmp_path, f"ip route {noc} Null0\n")
    doc = _cli_env(deployed, {"LIENTHONG_TEMPLATES": str(tdir)}, "deploy", "--apply", "--site", victim,
                   "--confirm-timeout", "15", "--json")
    item = json.loads(doc.stdout)["items"][0]
    assert item["status"] == "rolled_back", item
    assert "watchdog" in item["detail"] or "restored" in item["detail"]
    assert running(deployed, victim) == before
