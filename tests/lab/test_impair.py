"""Link impairments: profile logic (pure), then delay/jitter/loss/rate measured with ping across the lab."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftool.lab.errors import LabError
from conftool.lab.impair import Params, load_profile, netem_line, profile_params, tbf_line
from conftool.lab.plan import LinkPlan, RouterPlan
from tests.lab.fixtures import LabSession

PROV_LAN, COMMUNE_LAN = "10.11.0.1", "10.11.11.1"


# --- pure ------------------------------------------------------------------------------------------------
def _router(site: str, level: str, kind: str = "internet", bw: float | None = 50.0) -> tuple[RouterPlan, LinkPlan]:
    lk = LinkPlan(kind=kind, interface="wan0", prefix="100.64.0.44/30", address="100.64.0.46",
                  gateway="100.64.0.45", cloud_ns="lt-isp", cloud_if="i-" + site, bandwidth_mbps=bw)
    r = RouterPlan(site=site, name=site, level=level, hostname="rt-x", instance="rt-x", namespace="lt-" + site,
                   mgmt_address="10.250.0.38", mgmt_prefixlen=20, root_if="ltm-" + site, username="netops",
                   links=[lk])
    return r, lk


def test_rural_profile_gives_values_in_range_fixed_per_site() -> None:
    prof = load_profile("rural")
    seen = set()
    for site in ("03124", "03127", "03148", "03151", "03160"):
        r, lk = _router(site, "commune")
        p = profile_params(prof, r, lk)
        assert 15 <= p.delay_ms <= 40  # half of the 30–80 ms round trip, each direction
        assert p.loss_pct == 0.5 and p.jitter_ms == 5 and p.rate_mbit == 50.0
        assert profile_params(prof, r, lk) == p  # reproducible
        seen.add(p.delay_ms)
    assert len(seen) > 1  # sites differ
    r, lk = _router("094", "district", "dedicated", 300.0)
    p = profile_params(prof, r, lk)
    assert 5 <= p.delay_ms <= 7.5 and p.rate_mbit == 300.0


@pytest.mark.parametrize("text, field", [
    ("links: {internet: {commune: {rtt_ms: [80, 30]}}}", "rtt_ms"),
    ("links: {internet: {commune: {loss_pct: 120}}}", "loss_pct"),
    ("links: {wifi: {commune: {}}}", "links.wifi"),
    ("rate: fast\nlinks: {}", "rate"),
    ("nothing: here", "links"),
])
def test_bad_profile_names_file_and_field(tmp_path: Path, text: str, field: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(LabError) as exc:
        load_profile(str(f))
    assert str(f) in str(exc.value) and field in str(exc.value)


def test_unknown_profile_lists_the_known_ones() -> None:
    with pytest.raises(LabError, match="rural"):
        load_profile("martian")


def test_qdisc_lines() -> None:
    assert tbf_line("wan0", 50) == "qdisc replace dev wan0 root tbf rate 50mbit burst 25000 latency 100ms"
    assert tbf_line("wan0", None) == "qdisc del dev wan0 root"
    assert netem_line("wan0", Params(20, 5, 0.5, 100)) == \
        "qdisc replace dev wan0 root netem delay 20ms 5ms loss 0.5% rate 100mbit"
    assert netem_line("wan0", Params()) == "qdisc del dev wan0 root"


# --- against the lab -------------------------------------------------------------------------------------
def vty(lab: LabSession, site: str, *lines: str) -> None:
    args = ["vtysh", "-c", "configure terminal"]
    for ln in lines:
        args += ["-c", ln]
    cp = lab.exec(site, *args)
    assert cp.returncode == 0, cp.stdout + cp.stderr


def ping_stats(lab: LabSession, node: str, dst: str, src: str, count: int = 20,
               interval: float = 0.05) -> tuple[float, float]:
    """(loss %, average RTT ms) of `ping -q`; RTT is nan when nothing came back."""
    cp = lab.exec(node, "ping", "-q", "-c", str(count), "-i", str(interval), "-W", "2", "-I", src, dst,
                  timeout=count * interval + 30)
    loss = float(re.search(r"([\d.]+)% packet loss", cp.stdout).group(1))  # type: ignore[union-attr]
    m = re.search(r"= [\d.]+/([\d.]+)/", cp.stdout)
    return loss, float(m.group(1)) if m else float("nan")


def settle(lab: LabSession) -> None:
    """A splice or unsplice swaps the circuit (a carrier blip, routes reinstalled): wait for the path."""
    for _ in range(30):
        if ping_stats(lab, "11", COMMUNE_LAN, PROV_LAN, count=1)[0] == 0:
            return
        time.sleep(0.2)
    pytest.fail("the TSLCD path did not come back after the link change")


def tslcd_routes(lab: LabSession) -> None:
    """Province ↔ commune 03124 over TSLCD, configured as deploy would."""
    vty(lab, "11", "interface lan0", "ip address 10.11.0.1/24", "exit", "interface tslcd0",
        "ip address 172.16.0.2/30", "exit", "ip route 10.11.11.0/24 172.16.0.1")
    vty(lab, "03124", "interface lan0", "ip address 10.11.11.1/24", "exit", "interface tslcd0",
        "ip address 172.16.0.46/30", "exit", "ip route 10.11.0.0/24 172.16.0.45")
    for _ in range(30):
        if ping_stats(lab, "11", COMMUNE_LAN, PROV_LAN, count=1)[0] == 0:
            return
        time.sleep(0.2)
    pytest.fail("no TSLCD path between the province and commune 03124")


@pytest.fixture
def routed(lab: LabSession) -> Iterator[LabSession]:
    tslcd_routes(lab)
    yield lab
    lab.cli("lab", "fault", "--clear")


@pytest.mark.lab
def test_delay_jitter_loss_change_ping_and_clear_restores(routed: LabSession) -> None:
    lab = routed
    loss0, rtt0 = ping_stats(lab, "11", COMMUNE_LAN, PROV_LAN)
    assert loss0 == 0 and rtt0 < 15

    cp = lab.cli("lab", "fault", "03124", "--link", "dedicated", "--delay", "40", "--jitter", "2", "--json")
    assert cp.returncode == 0, cp.stdout + cp.stderr
    fault = json.loads(cp.stdout)["fault"]
    assert fault["delay_ms"] == 40 and fault["state"] == "impaired"
    settle(lab)
    loss1, rtt1 = ping_stats(lab, "11", COMMUNE_LAN, PROV_LAN)
    assert loss1 == 0
    assert 75 <= rtt1 <= 200, rtt1  # 2 × 40 ms, minus jitter, plus a loaded machine

    doc = lab.status()
    assert doc["link_emulation"]["impaired_links"] == 1
    node = next(n for n in doc["nodes"] if n["site"] == "03124" and n["role"] == "router")
    assert any(f["state"] == "impaired" and f["link"] == "dedicated" for f in node["faults"])
    if doc["link_emulation"]["backend"] == "forwarder":
        assert any(n["role"] == "link-emulator" and n["up"] for n in doc["nodes"])

    # Loss, the delay kept: 30 % each way ≈ 51 % of round trips.
    assert lab.cli("lab", "fault", "03124", "--link", "dedicated", "--loss", "30").returncode == 0
    loss2, rtt2 = ping_stats(lab, "11", COMMUNE_LAN, PROV_LAN, count=100, interval=0.02)
    assert 25 <= loss2 <= 80, loss2
    assert rtt2 >= 75

    # The other link kinds of the site are untouched; clearing gives the plain link back.
    assert lab.cli("lab", "fault", "--clear", "03124").returncode == 0
    settle(lab)
    loss3, rtt3 = ping_stats(lab, "11", COMMUNE_LAN, PROV_LAN)
    assert loss3 == 0 and rtt3 < 15
    assert lab.status()["link_emulation"]["impaired_links"] == 0


@pytest.mark.lab
def test_rate_limit_is_a_tbf_on_both_ends(routed: LabSession) -> None:
    lab = routed
    assert lab.cli("lab", "fault", "03124", "--link", "internet", "--rate", "5").returncode == 0
    router_q = lab.exec("03124", "tc", "qdisc", "show", "dev", "wan0").stdout
    isp_q = lab.exec("isp", "tc", "qdisc", "show", "dev", "i-03124").stdout
    assert "tbf" in router_q and "rate 5Mbit" in router_q
    assert "tbf" in isp_q and "rate 5Mbit" in isp_q
    assert lab.cli("lab", "fault", "--clear").returncode == 0
    assert "tbf" not in lab.exec("03124", "tc", "qdisc", "show", "dev", "wan0").stdout


@pytest.mark.lab
def test_bad_impairment_input_is_exit_2(lab: LabSession) -> None:
    cp = lab.cli("lab", "fault", "03124", "--link", "lan", "--delay", "10")
    assert cp.returncode == 2 and "lan" in cp.stdout + cp.stderr
    cp = lab.cli("lab", "fault", "03124", "--link", "internet", "--loss", "150")
    assert cp.returncode == 2 and "--loss" in cp.stdout + cp.stderr
    cp = lab.cli("lab", "up", "--impair", "/nonexistent/profile.yaml")
    assert cp.returncode == 2 and "/nonexistent/profile.yaml" in cp.stdout + cp.stderr


@pytest.mark.lab
def test_up_with_impair_profile(lab: LabSession) -> None:
    """`lab up --impair`: every Internet/TSLCD link gets the rural values and its inventory rate."""
    lab.down()
    try:
        cp = lab.cli("lab", "up", "--impair", "--json", timeout=180)
        assert cp.returncode == 0, cp.stdout + cp.stderr
        lab.is_up = True
        doc = json.loads(cp.stdout)
        assert doc["link_emulation"]["profile"] == "rural"
        assert doc["link_emulation"]["impaired_links"] == 14  # 7 routers × (internet + dedicated)
        tslcd_routes(lab)
        loss, rtt = ping_stats(lab, "11", COMMUNE_LAN, PROV_LAN, count=30)
        # province TSLCD 2–5 ms + commune TSLCD 10–20 ms round trip (and a little loss and jitter)
        assert loss <= 30 and 10 <= rtt <= 120, (loss, rtt)
        assert "rate 100Mbit" in lab.exec("03124", "tc", "qdisc", "show", "dev", "tslcd0").stdout
    finally:
        lab.down()  # the next test gets a plain lab again
