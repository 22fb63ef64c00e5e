"""Compliance rules as data: shipped YAML plus the province's own files, evaluated on the parsed running config.

A rule names the baseline it comes from (Decree 85/2016, TCVN 11930:2017 …), its severity, the fix, and per
platform the lines it requires or forbids (regexes on the normalised config tree, optionally inside a section).
A platform the rule has no check for, or marks `not_applicable`, or whose template cannot carry the baseline
item (`conftool.render.coverage`), is reported `skipped` with the reason; so is a rule whose prerequisite is not
deployed yet (e.g. "SNMPv3 only" on a device with no SNMP at all). Never a silent pass.

File shape::

    rules:
      - id: LT-PWD-01
        title: Mật khẩu được mã hoá / Password encryption
        severity: medium            # low | medium | high | critical
        baseline: "TCVN 11930:2017 …"
        item: password_encryption   # optional: a baseline item of render.coverage
        checks:
          frr: {require: ['^service password-encryption$']}
          cisco_ios:
            require: [{section: '^line vty', line: '^transport input ssh$'}]
            forbid: ['^ip http server$']
            requires: ['^snmp-server ']       # prerequisite; absent -> skipped
            requires_reason: SNMP is not deployed on this device yet
        not_applicable: {huawei_vrp: "why"}
        fix: "text"                  # or {platform: text, default: text}

Patterns may use placeholders for the province's services: {soc_syslog} {ntp} {dns} {noc_prefix} {noc_network}
{noc_wildcard}.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from conftool.audit.errors import RuleError
from conftool.devices.normalize import Config, Node
from conftool.inventory import Services

logger = logging.getLogger(__name__)

SHIPPED_DIR = Path(__file__).parent / "rules"
PLACEHOLDERS = ("soc_syslog", "ntp", "dns", "noc_prefix", "noc_network", "noc_wildcard")


class Match(BaseModel):
    """A line (regex) at top level, or inside every/any section whose header matches `section`."""

    model_config = ConfigDict(extra="forbid")
    line: str | None = None
    section: str | None = None

    @field_validator("line", "section")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(_fill(v, None))
            except re.error as exc:
                raise ValueError(f"invalid regular expression {v!r}: {exc}") from None
        return v

    def describe(self) -> str:
        if self.section and self.line:
            return f"`{self.line}` under `{self.section}`"
        return f"`{self.line or self.section}`"


def _as_match(v: Any) -> Any:
    return {"line": v} if isinstance(v, str) else v


class PlatformCheck(BaseModel):
    model_config = ConfigDict(extra="forbid")
    require: list[Match] = Field(default_factory=list)
    forbid: list[Match] = Field(default_factory=list)
    requires: list[Match] = Field(default_factory=list)
    requires_reason: str | None = None

    @field_validator("require", "forbid", "requires", mode="before")
    @classmethod
    def _strings(cls, v: Any) -> Any:
        return [_as_match(x) for x in v] if isinstance(v, list) else v


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,40}$")
    title: str = Field(min_length=1)
    severity: Literal["low", "medium", "high", "critical"] = "medium"
    baseline: str = Field(min_length=1)
    item: str | None = None
    checks: dict[str, PlatformCheck] = Field(default_factory=dict)
    not_applicable: dict[str, str] = Field(default_factory=dict)
    fix: str | dict[str, str] = ""
    source: str = ""  # the file it came from (set by the loader)

    @field_validator("item")
    @classmethod
    def _known_item(cls, v: str | None) -> str | None:
        from conftool.render.coverage import BASELINE_ITEMS

        if v is not None and v not in BASELINE_ITEMS:
            raise ValueError(f"unknown baseline item {v!r}; known: {', '.join(BASELINE_ITEMS)}")
        return v

    def fix_for(self, platform: str) -> str:
        if isinstance(self.fix, str):
            return self.fix
        return self.fix.get(platform, self.fix.get("default", ""))


class _RuleFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: list[dict[str, Any]]


# ---- loading ------------------------------------------------------------------------------------------
def _rule_label(raw: Any, index: int) -> str:
    rid = raw.get("id") if isinstance(raw, dict) else None
    return f"rule {rid!r}" if rid else f"rule #{index + 1}"


def load_file(path: Path) -> list[Rule]:
    """Rules of one YAML file; any problem is a RuleError naming the file, the rule and the field."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RuleError(f"compliance rule file {path}: cannot read it ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise RuleError(f"compliance rule file {path}: not valid YAML: {' '.join(str(exc).split())}") from None
    try:
        f = _RuleFile.model_validate(doc)
    except ValidationError:
        raise RuleError(f"compliance rule file {path}: expected a mapping with a `rules:` list") from None
    out: list[Rule] = []
    for i, raw in enumerate(f.rules):
        try:
            rule = Rule.model_validate({**raw, "source": str(path)})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(rule)'}: {e['msg']}"
                                 for e in exc.errors())
            raise RuleError(f"compliance rule file {path}, {_rule_label(raw, i)}: {problems}") from None
        out.append(rule)
    seen: set[str] = set()
    for r in out:
        if r.id in seen:
            raise RuleError(f"compliance rule file {path}: rule id {r.id!r} appears twice")
        seen.add(r.id)
    return out


def load_rules(inventory_dir: Path | None = None, extra: Iterable[Path] = ()) -> list[Rule]:
    """Shipped rules, then `<inventory>/compliance/*.yml`, then `--rules` files; a later id replaces an earlier."""
    files = sorted(SHIPPED_DIR.glob("*.yml"))
    if inventory_dir is not None:
        files += sorted((inventory_dir / "compliance").glob("*.yml"))
    for p in extra:
        if not p.is_file():
            raise RuleError(f"compliance rule file {p} does not exist")
        files.append(p)
    by_id: dict[str, Rule] = {}
    for p in files:
        for r in load_file(p):
            if r.id in by_id:
                logger.info("rule %s from %s replaces the one from %s", r.id, p, by_id[r.id].source)
            by_id[r.id] = r
    return list(by_id.values())


# ---- evaluation ---------------------------------------------------------------------------------------
@dataclass
class Verdict:
    status: Literal["ok", "fail", "skipped"]
    detail: str


def _fill(pattern: str, services: Services | None) -> str:
    values: dict[str, list[str]] = {k: ["0.0.0.0"] for k in PLACEHOLDERS}
    if services is not None:
        noc = services.noc_prefix
        values = {"soc_syslog": [str(services.soc_syslog)], "ntp": [str(a) for a in services.ntp],
                  "dns": [str(a) for a in services.dns], "noc_prefix": [str(noc)],
                  "noc_network": [str(noc.network_address)], "noc_wildcard": [str(noc.hostmask)]}
    for k, vs in values.items():
        pattern = pattern.replace("{" + k + "}", "(?:" + "|".join(re.escape(v) for v in vs) + ")")
    return pattern


def _found(m: Match, cfg: Config, services: Services | None) -> bool:
    line = re.compile(_fill(m.line, services)) if m.line else None
    if m.section is None:
        return line is not None and any(line.search(n.text) for n in cfg.nodes)
    sect = re.compile(_fill(m.section, services))
    heads = [n for n in cfg.nodes if sect.search(n.text)]
    if line is None:
        return bool(heads)
    return any(_any_child(h.children, line) for h in heads)


def _any_child(nodes: list[Node], line: re.Pattern[str]) -> bool:
    return any(line.search(c.text) or _any_child(c.children, line) for c in nodes)


def evaluate(rule: Rule, platform: str, cfg: Config, services: Services | None) -> Verdict:
    """The rule's verdict on one parsed running config."""
    from conftool.render.coverage import COVERAGE

    if platform in rule.not_applicable:
        return Verdict("skipped", f"not applicable to {platform}: {rule.not_applicable[platform]}")
    check = rule.checks.get(platform)
    if check is None:
        cov = COVERAGE.get(platform, {}).get(rule.item or "")
        if cov is not None and cov[0] in ("no", "builtin"):
            word = "built into the platform" if cov[0] == "builtin" else "not configurable on the device"
            return Verdict("skipped", f"{rule.item} is {word} on {platform}: {cov[1]}")
        return Verdict("skipped", f"rule {rule.id} has no check for platform {platform}")
    missing_pre = [m for m in check.requires if not _found(m, cfg, services)]
    if missing_pre:
        why = check.requires_reason or f"prerequisite {missing_pre[0].describe()} not deployed yet"
        return Verdict("skipped", why)
    missing = [m.describe() for m in check.require if not _found(m, cfg, services)]
    present = [m.describe() for m in check.forbid if _found(m, cfg, services)]
    if missing or present:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
            [f"forbidden {', '.join(present)} present"] if present else [])
        return Verdict("fail", "; ".join(parts))
    return Verdict("ok", rule.title)
