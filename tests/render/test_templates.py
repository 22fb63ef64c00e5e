"""Templates: golden files per platform and role, routing/management invariants, coverage table, errors."""

from __future__ import annotations

import os
import re
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from conftool.errors import ConftoolError
from conftool.inventory import Inventory, Level
from conftool.render import (
    BASELINE_ITEMS,
    COVERAGE,
    TEMPLATE_PLATFORMS,
    TEMPLATE_ROLES,
    Renderer,
    RenderError,
    covers,
    render_device,
    render_inventory,
    templates_dir,
)
from tests.render.conftest import GOLDEN, REPO, ROLE_SITES, router_as

UPDATE = os.environ.get("LIENTHONG_UPDATE_GOLDEN") == "1"


@pytest.mark.parametrize("platform", TEMPLATE_PLATFORMS)
@pytest.mark.parametrize("role", TEMPLATE_ROLES)
def test_golden(inv: Inventory, renderer: Renderer, platform: str, role: str) -> None:
    """Golden files change only on purpose: LIENTHONG_UPDATE_GOLDEN=1 pytest tests/render rewrites them."""
    site, dev = router_as(inv, ROLE_SITES[role], platform)
    assert dev.role.value == role
    text = renderer.render_config(site, dev)
    golden = GOLDEN / platform / f"{role}.cfg"
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text)
    assert golden.exists(), f"missing golden file {golden}; run with LIENTHONG_UPDATE_GOLDEN=1 once"
    assert text == golden.read_text(), f"{golden} differs from the rendered config"


def test_templates_dir_found_from_checkout() -> None:
    assert templates_dir() == REPO / "templates"


def test_templates_dir_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIENTHONG_TEMPLATES", str(tmp_path))
    (tmp_path / "frr").mkdir()
    assert templates_dir() == tmp_path


def test_every_router_of_the_province_renders(inv: Inventory) -> None:
    configs = render_inventory(inv)
    routers = [d.hostname for _, d in inv.devices() if d.is_router]
    assert sorted(configs) == sorted(routers)
    assert len(configs) == 140
    hosts = [d.hostname for _, d in inv.devices() if not d.is_router]
    assert hosts and not set(hosts) & set(configs)


def _routes(text: str) -> list[tuple[IPv4Network, str]]:
    return [(IPv4Network(m[0]), m[1]) for m in re.findall(r"^ip route (\S+) (\S+)", text, re.M)]


def test_frr_routing_every_commune_reaches_province_over_tslcd_only(inv: Inventory) -> None:
    """Province LAN (services) via the TSLCD gateway, Internet default via the ISP, blackhole guard so that a
    dead TSLCD never lets province traffic fall back to the Internet line."""
    configs = render_inventory(inv)
    province_lan = inv.get("11").link("lan")
    assert province_lan is not None
    services = [inv.services.soc_syslog, *inv.services.ntp, *inv.services.dns]
    for site in inv.by_level(Level.COMMUNE):
        dev = site.router
        assert dev is not None
        text = configs[dev.hostname]
        routes = _routes(text)
        ded, inet = site.link("dedicated"), site.link("internet")
        assert ded is not None and inet is not None
        via_tslcd = [n for n, nh in routes if nh == str(ded.gateway)]
        assert any(province_lan.prefix.subnet_of(n) for n in via_tslcd), site.slug
        for a in services:
            assert any(IPv4Address(a) in n for n in via_tslcd)
        # the only route via the Internet gateway is the default route
        assert [n for n, nh in routes if nh == str(inet.gateway)] == [IPv4Network("0.0.0.0/0")]
        guards = [n for n, nh in routes if nh == "blackhole"]
        assert guards and all(province_lan.prefix.subnet_of(g) for g in guards)
        assert re.search(r"^ip route \S+ blackhole 250$", text, re.M)


def test_frr_core_routes_every_other_lan_via_tslcd(inv: Inventory) -> None:
    site = inv.get("11")
    dev = site.router
    assert dev is not None
    routes = _routes(render_device(inv, site, dev))
    ded = site.link("dedicated")
    assert ded is not None
    lans = {lk.prefix for s in inv.sites for lk in s.links if lk.kind == "lan" and s.id != "11"}
    assert {n for n, nh in routes if nh == str(ded.gateway)} == lans


@pytest.mark.parametrize("platform", TEMPLATE_PLATFORMS)
def test_management_kept_and_acl_from_noc(inv: Inventory, renderer: Renderer, platform: str) -> None:
    site, dev = router_as(inv, "03154", platform)
    text = renderer.render_config(site, dev)
    assert "mgmt0" in text and str(dev.mgmt_address) in text
    noc = inv.services.noc_prefix
    assert str(noc) in text or f"{noc.network_address} {noc.hostmask}" in text
    assert "MGMT-SSH" in text


@pytest.mark.parametrize("platform", TEMPLATE_PLATFORMS)
def test_coverage_table_matches_templates(inv: Inventory, renderer: Renderer, platform: str) -> None:
    """The per-platform coverage table is checked against what the template really emits."""
    assert set(COVERAGE[platform]) == set(BASELINE_ITEMS)
    site, dev = router_as(inv, "096", platform)
    text = renderer.render_config(site, dev)
    body = "\n".join(line for line in text.splitlines() if not line.startswith(("!", "#")))
    markers = {
        "ntp": re.escape(str(inv.services.ntp[0])),
        "syslog": re.escape(str(inv.services.soc_syslog)) if platform != "frr" else "log syslog",
        "snmpv3": r"LT-VIEW|security=private",
        "dns": re.escape(str(inv.services.dns[0])),
        "banner": "Authorised access only",
        "vlans": r"dot1Q 10|vid 10|vlan-id=10",
        "internet_filter": r"INTERNET-IN",
        "internet_nat": r"ip nat inside source|nat outbound|action=masquerade",
    }
    for item, marker in markers.items():
        present = bool(re.search(marker, body))
        assert present == covers(platform, item), f"{platform}: {item} table says {COVERAGE[platform][item]}"


def test_frr_template_emits_only_vtysh_commands(inv: Inventory, renderer: Renderer) -> None:
    site, dev = router_as(inv, "11", "frr")
    text = renderer.render_config(site, dev)
    for bad in ("ntp ", "snmp", "logging host", "banner"):
        assert not re.search(rf"^\s*{bad}", text, re.M), bad


@pytest.mark.parametrize("platform", TEMPLATE_PLATFORMS)
def test_secrets_are_never_rendered(inv: Inventory, renderer: Renderer, platform: str,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("LIENTHONG_SNMP_AUTH", "LIENTHONG_SNMP_PRIV", "LIENTHONG_ENABLE_SECRET"):
        monkeypatch.setenv(var, f"s3cr3t-{var}")
    site, dev = router_as(inv, "11", platform)
    text = renderer.render_config(site, dev)
    assert "s3cr3t" not in text
    if platform == "cisco_ios":
        assert "env:LIENTHONG_ENABLE_SECRET" in text  # a reference for the reader, applied by deploy


def _broken_templates(tmp_path: Path, body: str) -> Path:
    (tmp_path / "frr").mkdir()
    (tmp_path / "frr" / "cpe.j2").write_text(body)
    return tmp_path


def test_strict_undefined_names_template_line_and_variable(inv: Inventory, tmp_path: Path) -> None:
    tdir = _broken_templates(tmp_path, "hostname {{ device.hostname }}\nntp server {{ services.ntp_server }}\n")
    site, dev = router_as(inv, "03154", "frr")
    with pytest.raises(RenderError) as ei:
        Renderer(inv, tdir).render_config(site, dev)
    msg = str(ei.value)
    assert isinstance(ei.value, ConftoolError) and ei.value.exit_code == 2
    assert "frr/cpe.j2:2" in msg and "ntp_server" in msg and "rt-sin-thau" in msg


def test_missing_template_and_syntax_error(inv: Inventory, tmp_path: Path) -> None:
    site, dev = router_as(inv, "096", "frr")  # edge: no frr/edge.j2 in the temp dir
    tdir = _broken_templates(tmp_path, "{% if %}\n")
    with pytest.raises(RenderError, match=r"frr/edge\.j2 not found"):
        Renderer(inv, tdir).render_config(site, dev)
    site, dev = router_as(inv, "03154", "frr")
    with pytest.raises(RenderError, match=r"cpe.j2:1: syntax error"):
        Renderer(inv, tdir).render_config(site, dev)


def test_missing_mgmt_address_is_a_clear_error(inv: Inventory, renderer: Renderer) -> None:
    site, dev = router_as(inv, "03154", "frr")
    dev = dev.model_copy(update={"mgmt_address": None})
    with pytest.raises(RenderError, match=r"03154.*rt-sin-thau.*mgmt_address"):
        renderer.render_config(site, dev)


def test_unmanaged_and_hosts_are_skipped(inv: Inventory, renderer: Renderer) -> None:
    site = inv.get("03154")
    router = site.router
    assert router is not None
    res = renderer.render(site, router.model_copy(update={"managed": False}))
    assert res.status == "unmanaged" and res.config is None
    host = site.hosts[0]
    assert renderer.render(site, host).status == "skipped"


def test_docs_coverage_table_matches_code() -> None:
    rows = {}
    for line in (REPO / "docs" / "render.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and cells[0] in BASELINE_ITEMS:
            rows[cells[0]] = cells[1:]
    assert set(rows) == set(BASELINE_ITEMS)
    for item, values in rows.items():
        assert values == [COVERAGE[p][item][0] for p in TEMPLATE_PLATFORMS], item


def test_literal_secret_in_vars_is_refused_without_echo(inv: Inventory, renderer: Renderer) -> None:
    site, dev = router_as(inv, "03154", "cisco_ios")
    site = site.model_copy(update={"vars": {"snmp_auth_ref": "hunter2-literal"}})
    with pytest.raises(RenderError, match="snmp_auth_ref is not a credential reference") as ei:
        renderer.render_config(site, dev)
    assert "hunter2" not in str(ei.value)
    site = site.model_copy(update={"vars": {"snmp_auth_ref": "vault:secrets.yml#snmp_auth"}})
    assert "vault:secrets.yml#snmp_auth" in renderer.render_config(site, dev)
