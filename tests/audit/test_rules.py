"""Compliance rules: the shipped baseline on every platform's intended config, hand-removed lines, skips with
reasons, the province's own rule files, and bad rule files as clear errors naming file and rule."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftool.audit.errors import RuleError
from conftool.audit.rules import evaluate, load_file, load_rules
from conftool.devices.normalize import normalize
from conftool.inventory import Inventory, load
from conftool.render import Renderer

PLATFORMS = ("frr", "cisco_ios", "huawei_vrp", "mikrotik_routeros")
CONFTOOL = str(Path(sys.executable).parent / "conftool")


@pytest.fixture(scope="module")
def inv(reference_inventory: Path) -> Inventory:
    return load(reference_inventory)


def intended(inv: Inventory, platform: str, site_id: str = "03148") -> str:
    site = inv.get(site_id)
    assert site.router is not None
    return Renderer(inv).render_config(site, site.router.model_copy(update={"platform": platform}))


def verdicts(inv: Inventory, platform: str, text: str) -> dict[str, tuple[str, str]]:
    cfg = normalize(text, platform)
    return {r.id: (v.status, v.detail) for r in load_rules(None)
            for v in [evaluate(r, platform, cfg, inv.services)]}


@pytest.mark.parametrize("platform", PLATFORMS)
def test_intended_configs_comply(inv: Inventory, platform: str) -> None:
    v = verdicts(inv, platform, intended(inv, platform))
    assert not [k for k, (s, _) in v.items() if s == "fail"], v
    assert sum(s == "ok" for s, _ in v.values()) >= 3
    for s, detail in v.values():
        if s == "skipped":
            assert detail, "a skip always carries its reason"


# (platform, line removed by hand (regex), rule that must fail)
REMOVALS = [
    ("frr", r"^service password-encryption$", "LT-PWD-01"),
    ("frr", r"^ access-class ", "LT-ACL-01"),
    ("frr", r"^log syslog", "LT-LOG-02"),
    ("cisco_ios", r"^logging host ", "LT-LOG-01"),
    ("cisco_ios", r"^ transport input ssh$", "LT-SSH-01"),
    ("cisco_ios", r"^ntp server ", "LT-NTP-01"),
    ("cisco_ios", r"^banner login ", "LT-BANNER-01"),
    ("huawei_vrp", r"^info-center loghost ", "LT-LOG-01"),
    ("huawei_vrp", r"^ acl \d+ inbound$", "LT-ACL-01"),
    ("mikrotik_routeros", r"^set ssh address=", "LT-ACL-01"),
]


@pytest.mark.parametrize(("platform", "line", "rule"), REMOVALS)
def test_removed_line_fails_exactly_its_rule(inv: Inventory, platform: str, line: str, rule: str) -> None:
    text = intended(inv, platform)
    kept = [x for x in text.splitlines() if not re.search(line, x)]
    assert len(kept) < len(text.splitlines()), f"{line} not in the {platform} template"
    v = verdicts(inv, platform, "\n".join(kept) + "\n")
    assert [k for k, (s, _) in v.items() if s == "fail"] == [rule]


def test_forbidden_line_fails(inv: Inventory) -> None:
    v = verdicts(inv, "cisco_ios", intended(inv, "cisco_ios") + "ip http server\nsnmp-server community public RO\n")
    assert v["LT-HTTP-01"][0] == "fail" and v["LT-SNMP-01"][0] == "fail"
    assert "forbidden" in v["LT-SNMP-01"][1]


def test_prerequisite_not_deployed_is_skipped(inv: Inventory) -> None:
    text = "\n".join(x for x in intended(inv, "cisco_ios").splitlines() if not x.startswith("snmp-server"))
    status, detail = verdicts(inv, "cisco_ios", text)["LT-SNMP-01"]
    assert status == "skipped" and "not deployed" in detail


def test_platform_without_the_item_is_skipped_with_reason(inv: Inventory) -> None:
    v = verdicts(inv, "frr", intended(inv, "frr"))
    assert v["LT-NTP-01"][0] == "skipped" and "chrony" in v["LT-NTP-01"][1]
    assert v["LT-SSH-01"][0] == "skipped" and "not applicable" in v["LT-SSH-01"][1]


USER_RULE = """
rules:
  - id: DB-VTY-01
    title: Hạn chế vty / vty limited
    severity: low
    baseline: "Quy chế ATTT tỉnh Điện Biên"
    checks:
      frr: {require: [{section: '^line vty$', line: '^exec-timeout '}]}
    fix: "line vty / exec-timeout 10 0"
  - id: LT-PWD-01
    title: replaced by the province
    baseline: "own"
    checks:
      frr: {forbid: ['^service password-encryption$']}
"""


def test_user_rules_from_inventory_and_override(inv: Inventory, tmp_path: Path, reference_inventory: Path) -> None:
    d = tmp_path / "inv"
    shutil.copytree(reference_inventory, d)
    (d / "compliance").mkdir()
    (d / "compliance" / "province.yml").write_text(USER_RULE)
    rules = {r.id: r for r in load_rules(d)}
    assert "DB-VTY-01" in rules and rules["LT-PWD-01"].title == "replaced by the province"
    cfg = normalize(intended(inv, "frr"), "frr")
    assert evaluate(rules["DB-VTY-01"], "frr", cfg, inv.services).status == "fail"
    assert evaluate(rules["LT-PWD-01"], "frr", cfg, inv.services).status == "fail"


BAD = [
    ("rules: [{id: X-1, title: t, baseline: b, checks: {frr: {require: ['^(unclosed']}}}]", "rule 'X-1'",
     "invalid regular expression"),
    ("rules: [{id: X-2, title: t, baseline: b, severity: urgent}]", "rule 'X-2'", "severity"),
    ("rules: [{id: X-3, title: t}]", "rule 'X-3'", "baseline"),
    ("rules: [{id: X-4, title: t, baseline: b, colour: red}]", "rule 'X-4'", "colour"),
    ("rules: [{title: t, baseline: b}]", "rule #1", "id"),
    ("rules: [{id: X-5, title: t, baseline: b, item: coffee}]", "rule 'X-5'", "unknown baseline item"),
    ("rules: {a: 1", "", "not valid YAML"),
    ("- just a list", "", "`rules:` list"),
]


@pytest.mark.parametrize(("text", "rule", "words"), BAD)
def test_bad_rule_file_names_file_and_rule(tmp_path: Path, text: str, rule: str, words: str) -> None:
    p = tmp_path / "bad.yml"
    p.write_text(text)
    with pytest.raises(RuleError) as ei:
        load_file(p)
    msg = str(ei.value)
    assert str(p) in msg and rule in msg and words in msg


def test_cli_bad_rules_exit_2(tmp_path: Path, reference_inventory: Path) -> None:
    p = tmp_path / "bad.yml"
    p.write_text(BAD[0][0])
    cp = subprocess.run([CONFTOOL, "audit", "rules", "-i", str(reference_inventory), "--rules", str(p)],
                        capture_output=True, text=True)
    assert cp.returncode == 2, cp.stderr
    assert "bad.yml" in cp.stderr and "X-1" in cp.stderr and "Traceback" not in cp.stderr
    ok = subprocess.run([CONFTOOL, "audit", "rules", "-i", str(reference_inventory), "--json"],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and '"LT-ACL-01"' in ok.stdout
