"""Pure logic of the lab (no root needed): profiles, the plan, overlap refusal, generated files, state."""

from __future__ import annotations

import os
from ipaddress import IPv4Network
from pathlib import Path

import pytest

from conftool.inventory import Inventory, load
from conftool.lab import LabError, profile_sites
from conftool.lab.frr import bootstrap_config
from conftool.lab.host import anchor_script
from conftool.lab.lab import check_overlaps
from conftool.lab.netns import cloud_batches, host_batch, overlaps, root_batch
from conftool.lab.plan import LabPlan, build_plan, lab_prefixes
from conftool.lab.sshd import sshd_config
from conftool.lab.state import LabState, proc_start_time


@pytest.fixture(scope="module")
def inv(reference_inventory: Path) -> Inventory:
    return load(reference_inventory)


def test_small_profile_is_province_two_districts_two_communes_each(inv: Inventory) -> None:
    assert profile_sites(inv, "small") == ["11", "094", "03124", "03127", "095", "03148", "03151"]


def test_full_profile_is_every_router(inv: Inventory) -> None:
    sites = profile_sites(inv, "full")
    assert len(sites) == 140 and sites[0] == "11" and len(set(sites)) == 140


def test_unknown_profile_is_refused(inv: Inventory) -> None:
    with pytest.raises(LabError, match="unknown lab profile"):
        profile_sites(inv, "huge")


def test_plan_names_and_interfaces(inv: Inventory) -> None:
    plan = build_plan(inv, profile_sites(inv, "small"), "small")
    prov = plan.router("11")
    assert prov is not None
    assert prov.namespace == "lt-11" and prov.mgmt_address == "10.250.0.16" and prov.mgmt_prefixlen == 20
    assert {lk.interface for lk in prov.links} == {"lan0", "wan0", "tslcd0"}
    wan = prov.link("internet")
    assert wan is not None and (wan.cloud_ns, wan.cloud_if, wan.gateway) == ("lt-isp", "i-11", "100.64.0.1")
    assert plan.noc_address == "10.250.0.1/20"
    assert plan.services is not None and plan.services.gateway == "10.11.0.1"
    assert set(plan.services.addresses) == {"10.11.0.10/24", "10.11.0.11/24", "10.11.0.12/24"}
    assert plan.namespaces[:3] == ["lt-isp", "lt-tslcd", "lt-svc"] and len(plan.namespaces) == 10 + 5
    assert plan.router("rt-dien-bien-phu") is plan.router("094")
    assert LabPlan.from_dict(plan.to_dict()) == plan


def test_root_batch_keeps_link_addresses_out_of_routers(inv: Inventory) -> None:
    plan = build_plan(inv, profile_sites(inv, "small"), "small")
    lines = root_batch(plan)
    assert "link add lt-mgmt type bridge" in lines
    assert "link add wan0 netns lt-094 type veth peer name i-094 netns lt-isp" in lines
    clouds = cloud_batches(plan)
    assert "addr add 172.16.0.5/30 dev t-094" in clouds["lt-tslcd"]
    assert "route add 10.11.1.0/24 via 172.16.0.6 dev t-094" in clouds["lt-tslcd"]
    assert not any("route" in line for line in clouds["lt-isp"])  # the ISP knows only its /30s
    assert "route add default via 10.11.0.1" in clouds["lt-svc"]


def test_hosts_plan_room_pcs_and_server(inv: Inventory) -> None:
    plan = build_plan(inv, profile_sites(inv, "small"), "small")
    assert [h.hostname for h in plan.hosts] == ["srv-dien-bien", "pc-noong-bua", "pc-him-lam", "pc-song-da",
                                                 "pc-na-lay"]
    pc = plan.host("pc-noong-bua")
    assert pc is not None and pc is plan.host("lth-03124")
    assert (pc.namespace, pc.address, pc.gateway, pc.mgmt_address, pc.root_if, pc.router_ns) == (
        "lth-03124", "10.11.11.10/24", "10.11.11.1", "10.250.0.39", "lth-03124", "lt-03124")
    srv = plan.host("srv-dien-bien")
    assert srv is not None and srv.role == "server" and srv.address == "10.11.0.20/24"
    lines = root_batch(plan)
    assert "link add eth0 netns lth-03124 type veth peer name lp-h0 netns lt-03124" in lines
    assert "link set lth-03124 master lt-mgmt up" in lines
    assert host_batch(pc)[-1] == "route add default via 10.11.11.1 dev eth0"
    full = build_plan(inv, profile_sites(inv, "full"), "full")
    assert len(full.routers) == 140 and len(full.hosts) == 130
    assert len(set(full.namespaces)) == len(full.namespaces)


def test_bootstrap_config_holds_only_management(inv: Inventory) -> None:
    plan = build_plan(inv, ["094"], "small")
    text = bootstrap_config(plan.routers[0])
    assert "hostname rt-dien-bien-phu" in text and "ip address 10.250.0.18/20" in text
    assert "service integrated-vtysh-config" in text
    for other in ("172.16.", "100.64.", "10.11.1.1", "ip route"):
        assert other not in text


def test_sshd_config_is_key_only_and_lands_in_vtysh(inv: Inventory) -> None:
    r = build_plan(inv, ["094"], "small").routers[0]
    text = sshd_config(r)
    assert "PasswordAuthentication no" in text and "ListenAddress 10.250.0.18" in text
    assert "AllowUsers netops" in text
    assert "ForceCommand /bin/sh /run/lt-bin/lt-shell.sh rt-dien-bien-phu" in text  # → vtysh -N rt-dien-bien-phu


@pytest.mark.parametrize(("lab_net", "route", "clash"), [
    ("10.250.0.0/20", "10.250.0.0/24", True),   # route inside the lab prefix
    ("10.250.0.0/20", "10.0.0.0/8", True),      # route covering it
    ("10.250.0.0/20", "10.250.16.0/20", False),  # neighbour
    ("172.16.0.4/30", "172.16.0.8/30", False),
    ("172.16.0.4/30", "172.16.0.6/32", True),
])
def test_overlaps_case_table(lab_net: str, route: str, clash: bool) -> None:
    assert bool(overlaps([IPv4Network(lab_net)], [IPv4Network(route)])) is clash


def test_overlap_with_a_root_route_refuses(inv: Inventory) -> None:
    plan = build_plan(inv, profile_sites(inv, "small"), "small")
    assert IPv4Network("10.11.0.0/24") in lab_prefixes(plan)
    check_overlaps(plan, [IPv4Network("192.0.2.0/24")])
    with pytest.raises(LabError, match=r"10\.250\.0\.0/20 overlaps 10\.250\.0\.0/16.*nothing was built"):
        check_overlaps(plan, [IPv4Network("10.250.0.0/16")])


def test_router_without_mgmt_address_is_refused(reference_inventory: Path) -> None:
    sub = load(reference_inventory).select("094")  # a fresh copy: this test mutates it
    router = sub.get("094").router
    assert router is not None
    router.mgmt_address = None
    with pytest.raises(LabError, match=r"094.*mgmt_address is missing"):
        build_plan(sub, ["094"], "small")


def test_state_roundtrip_and_process_identity(tmp_path: Path, inv: Inventory) -> None:
    import os

    st = LabState(path=tmp_path / "state.json", plan=build_plan(inv, ["11"], "small"))
    rec = st.add_process(os.getpid(), "test", "11")
    st.namespaces = ["lt-11"]
    st.save()
    back = LabState.load(tmp_path / "state.json")
    assert back is not None and back.plan == st.plan and back.namespaces == ["lt-11"]
    assert back.processes[0].alive() and back.is_live()
    assert rec.start == proc_start_time(os.getpid())
    back.processes[0].start += 1  # a recycled PID has another start time: never ours
    assert not back.processes[0].alive()
    assert LabState.load(tmp_path / "missing.json") is None


@pytest.mark.skipif(os.geteuid() != 0, reason="the checks after the root check need root")
@pytest.mark.parametrize(("attr", "message"), [
    ("frr", "FRRouting is missing"),
    ("sshd", "openssh-server"),
    ("ip", "iproute2"),
])
def test_preflight_names_what_is_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, attr: str,
                                         message: str) -> None:
    from conftool.lab import frr, lab, sshd

    if attr == "frr":
        monkeypatch.setattr(frr, "FRR_LIB", tmp_path / "no-frr")
    elif attr == "sshd":
        monkeypatch.setattr(sshd, "SSHD", tmp_path / "no-sshd")
    else:
        monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LabError, match=message):
        lab.preflight_tools()


def test_small_profile_in_the_2025_map_is_province_and_four_communes(tmp_path: Path) -> None:
    from conftool.inventory import Era
    from conftool.inventory.generate import init as build_init
    from conftool.inventory.generate import write_dir

    write_dir(build_init("Điện Biên", Era.Y2025, None), tmp_path / "inv")
    inv = load(tmp_path / "inv")
    sites = profile_sites(inv, "small")
    assert sites[0] == "11" and len(sites) == 5
    assert all(inv.get(s).level == "commune" for s in sites[1:]) and sites[1:] == sorted(sites[1:])
    plan = build_plan(inv, sites, "small")
    assert plan.services is not None and len(plan.routers) == 5


@pytest.mark.parametrize("state, last", [("/tmp/lt-lab-state-x", "/tmp"), ("/root/.local/state/lienthong", "/root"),
                                         ("/srv/lab", None)])
def test_host_mounts_hide_the_state_dir_last(inv: Inventory, state: str, last: str | None) -> None:
    """Mounting over the directory that holds the state dir must come last, and paths are relative to it."""
    plan = build_plan(inv, ["11"], "small")
    script = anchor_script(Path(state) / "lab" / "hosts" / "srv-dien-bien", plan.hosts[0])
    # (a checkout under /tmp, as a CI clone may be, adds binds that keep it visible: not what this test is about)
    mounts = [ln for ln in script.splitlines() if ln.startswith("mount ") and "kept-" not in ln]
    assert len(mounts) == 7 and all(" lowerdir=/" in m or m.startswith("mount --bind ./") for m in mounts)
    assert "upperdir=etc.up,workdir=etc.work /etc" in script and "mount --bind ./run /run" in script
    if last:
        assert mounts[-1].endswith(" " + last)


def test_host_keeps_a_checkout_under_tmp_visible(inv: Inventory, monkeypatch: pytest.MonkeyPatch) -> None:
    """A CI clone under /tmp stays visible in hosts (wheelhouse, venv): held before /tmp is mounted over, re-bound
    after; a checkout elsewhere adds nothing."""
    from conftool.lab import host

    plan = build_plan(inv, ["11"], "small")
    monkeypatch.setattr(host, "SUITE", Path("/tmp/ci-clone"))
    lines = anchor_script(Path("/root/.local/state/lienthong/lab/hosts/srv"), plan.hosts[0]).splitlines()
    hold = lines.index("mount --bind /tmp/ci-clone ./kept-tmp-0")
    over = lines.index("mount --bind ./tmp /tmp")
    back = lines.index("mount --bind ./kept-tmp-0 /tmp/ci-clone")
    assert hold < over < back and lines[back - 1] == "mkdir -p /tmp/ci-clone"
    monkeypatch.setattr(host, "SUITE", Path("/work/main"))
    assert "kept-" not in anchor_script(Path("/root/.local/state/lienthong/lab/hosts/srv"), plan.hosts[0])
