"""Read an inventory directory (or its JSON export), resolve defaults, validate, and report every problem at once.

Layout on disk (one file per district, so an engineer edits one commune without scrolling 140 sites)::

    province.yml                  province meta, services, defaults, the province HQ site
    sites/094-dien-bien-phu.yml   ``district:`` (the district site), optional ``defaults:``, ``communes:``
    sites/....yml                 (2025 map: only ``communes:``, parent is the province)
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from conftool.errors import InventoryError, Problem
from conftool.inventory.defaults import apply_defaults
from conftool.inventory.inventory import Inventory, Source
from conftool.inventory.model import (
    Defaults,
    InventoryData,
    Level,
    ProvinceMeta,
    Services,
    Site,
)
from conftool.inventory.secrets import ADVICE, SECRET_KEYS, is_reference
from conftool.inventory.validate import validate
from conftool.inventory.yamlio import line_of, read_yaml

logger = logging.getLogger(__name__)

DEFAULT_INVENTORY = "inventory/dien-bien"
PROVINCE_KEYS = {"province", "services", "defaults", "level_defaults", "site"}
SITE_FILE_KEYS = {"district", "defaults", "communes"}
_ID_FIELDS = {"id", "parent", "code_2025"}


def default_inventory_path() -> Path:
    """``LIENTHONG_INVENTORY`` or ``inventory/dien-bien`` (DESIGN §9)."""
    return Path(os.environ.get("LIENTHONG_INVENTORY") or DEFAULT_INVENTORY)


def _fmt_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _msg(err: Any) -> tuple[str, str | None]:
    """A pydantic error as (message, hint) without echoing the input value (it may be a secret)."""
    loc = err.get("loc", ())
    field = str(loc[-1]) if loc else ""
    typ = err.get("type", "")
    msg = str(err.get("msg", "invalid value"))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    hint = None
    if typ == "extra_forbidden":
        msg = f"unknown field {field!r}"
        hint = "check the spelling; see the README's inventory reference for allowed fields"
        if field.lower() in SECRET_KEYS:
            msg = f"field {field!r} would hold a secret in clear"
            hint = ADVICE
    elif typ == "missing":
        msg = f"required field {field!r} is missing"
    elif field in _ID_FIELDS and typ in ("string_type", "string_pattern_mismatch"):
        hint = "GSO codes are strings of digits: quote them, e.g. id: '03124'"
    elif typ == "enum":
        pass
    return msg, hint


class _Collector:
    """Accumulates problems and raw trees so errors can carry file, path, site and line."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.problems: list[Problem] = []
        self.trees: dict[str, Any] = {}

    def add(self, file: str, path: str, message: str, *, site: str | None = None,
            hint: str | None = None, line: int | None = None) -> None:
        self.problems.append(Problem(file, path, message, site=site, hint=hint, line=line))

    def from_validation(self, exc: ValidationError, file: str, prefix: str, tree: Any,
                        site: str | None) -> None:
        for err in exc.errors(include_url=False, include_input=False):
            loc = tuple(err.get("loc", ()))
            msg, hint = _msg(err)
            path = _fmt_loc(loc)
            full = f"{prefix}.{path}" if prefix and path else (prefix or path)
            self.add(file, full, msg, site=site, hint=hint, line=line_of(tree, loc))


def _scan_secrets(node: Any, file: str, path: str, col: _Collector, site: str | None) -> None:
    """Refuse literal secrets anywhere in a file, with advice, never echoing the value."""
    if isinstance(node, dict):
        for k, v in list(node.items()):
            sub = f"{path}.{k}" if path else str(k)
            key = str(k).lower()
            if (key in SECRET_KEYS or key == "credentials") and isinstance(v, str | int | float) \
                    and not is_reference(str(v)):
                col.add(file, sub, "a secret is written in clear text: refused", site=site or _site_label(node),
                        hint=ADVICE, line=getattr(node, "line", None))
                # Reported once here; keep the model from reporting the same mistake again.
                if key == "credentials":
                    node[k] = "env:LITERAL_SECRET_REFUSED"
                else:
                    del node[k]
                continue
            _scan_secrets(v, file, sub, col, site)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _scan_secrets(v, file, f"{path}[{i}]", col, site)


def _site_label(raw: Any) -> str | None:
    if isinstance(raw, dict):
        sid, name = raw.get("id"), raw.get("name")
        if sid is not None or name is not None:
            return " ".join(str(x) for x in (sid, name) if x is not None)
    return None


def _parse_model(model: Any, raw: Any, col: _Collector, file: str, prefix: str, tree: Any) -> Any:
    try:
        return model() if raw is None else model.model_validate(raw)
    except ValidationError as exc:
        col.from_validation(exc, file, prefix, tree, None)
        return None


def _load_dir(base: Path) -> Inventory:
    col = _Collector(base)
    if not base.exists():
        raise InventoryError([Problem(str(base), "", "inventory directory does not exist",
                                      hint="run `conftool inventory init --province ... --out DIR` or pass "
                                           "--inventory DIR")])
    if not base.is_dir():
        raise InventoryError([Problem(str(base), "", "not a directory, .json or .yml inventory")])
    prov_tree, prob = read_yaml(base / "province.yml", "province.yml")
    if prob:
        raise InventoryError([prob])
    if not isinstance(prov_tree, dict):
        raise InventoryError([Problem("province.yml", "", "must be a mapping with province:, services:, site:")])
    _scan_secrets(prov_tree, "province.yml", "", col, None)
    for k in prov_tree:
        if k not in PROVINCE_KEYS:
            col.add("province.yml", str(k), f"unknown top-level key {k!r}",
                    hint=f"allowed: {', '.join(sorted(PROVINCE_KEYS))}", line=getattr(prov_tree, "line", None))
    for k in ("province", "services"):
        if k not in prov_tree:
            col.add("province.yml", k, f"required section {k!r} is missing")
    meta = _parse_model(ProvinceMeta, prov_tree.get("province"), col, "province.yml", "province",
                        prov_tree.get("province")) if "province" in prov_tree else None
    services = _parse_model(Services, prov_tree.get("services"), col, "province.yml", "services",
                            prov_tree.get("services")) if "services" in prov_tree else None
    defaults = _parse_model(Defaults, prov_tree.get("defaults"), col, "province.yml", "defaults",
                            prov_tree.get("defaults"))
    level_defaults: dict[Level, Defaults] = {}
    ld_raw = prov_tree.get("level_defaults") or {}
    if not isinstance(ld_raw, dict):
        col.add("province.yml", "level_defaults", "must be a mapping of level: defaults")
        ld_raw = {}
    for lv, raw in ld_raw.items():
        try:
            level = Level(lv)
        except ValueError:
            col.add("province.yml", f"level_defaults.{lv}", f"unknown level {lv!r}",
                    hint="use province, district or commune")
            continue
        d = _parse_model(Defaults, raw, col, "province.yml", f"level_defaults.{lv}", raw)
        if d is not None:
            level_defaults[level] = d

    sites: list[Site] = []
    sources: dict[str, Source] = {}
    where: dict[int, tuple[str, str, Any]] = {}  # id(Site) -> (file, prefix, raw tree)

    def build(raw: Any, file: str, prefix: str, level: Level, parent: str | None,
              layers: list[Defaults]) -> None:
        if not isinstance(raw, dict):
            col.add(file, prefix, "a site must be a mapping (id:, name:, slug:, links:, devices: ...)")
            return
        label = _site_label(raw)
        full = {"level": level.value, **({"parent": parent} if parent is not None else {}), **raw}
        try:
            site = Site.model_validate(apply_defaults(full, layers))
        except ValidationError as exc:
            col.from_validation(exc, file, prefix, raw, label)
            return
        sites.append(site)
        where[id(site)] = (file, prefix, raw)
        sources.setdefault(site.id, Source(file, prefix, getattr(raw, "line", None)))

    base_layers = [x for x in (defaults,) if x is not None]
    if meta is not None:
        psite = prov_tree.get("site") or {}
        if isinstance(psite, dict):
            psite = {"id": meta.id, "name": meta.name, "slug": meta.slug, "kind": "Tỉnh", **psite}
            psite_line = getattr(prov_tree.get("site"), "line", None)
            build(psite, "province.yml", "site", Level.PROVINCE, None,
                  base_layers + ([level_defaults[Level.PROVINCE]] if Level.PROVINCE in level_defaults else []))
            if psite_line and meta.id in sources:
                sources[meta.id] = Source("province.yml", "site", psite_line)
        else:
            col.add("province.yml", "site", "must be a mapping describing the province HQ site")

    site_dir = base / "sites"
    files = sorted(site_dir.glob("*.yml")) + sorted(site_dir.glob("*.yaml")) if site_dir.is_dir() else []
    if not files:
        col.add("sites/", "", "no site files found", hint="add sites/<district>.yml files with district: and communes:")
    for path in files:
        rel = str(path.relative_to(base))
        tree, prob = read_yaml(path, rel)
        if prob:
            col.problems.append(prob)
            continue
        if not isinstance(tree, dict):
            col.add(rel, "", "must be a mapping with district:, defaults:, communes:")
            continue
        _scan_secrets(tree, rel, "", col, None)
        for k in tree:
            if k not in SITE_FILE_KEYS:
                col.add(rel, str(k), f"unknown top-level key {k!r}",
                        hint=f"allowed: {', '.join(sorted(SITE_FILE_KEYS))}", line=getattr(tree, "line", None))
        file_defaults = _parse_model(Defaults, tree.get("defaults"), col, rel, "defaults", tree.get("defaults"))
        extra = [file_defaults] if file_defaults is not None and tree.get("defaults") is not None else []
        parent = meta.id if meta is not None else None
        dist = tree.get("district")
        if dist is not None:
            lv = [level_defaults[Level.DISTRICT]] if Level.DISTRICT in level_defaults else []
            build(dist, rel, "district", Level.DISTRICT, parent, base_layers + lv + extra)
            if isinstance(dist, dict) and dist.get("id") is not None:
                parent = str(dist.get("id"))
        communes = tree.get("communes")
        if communes is None:
            if dist is None:
                col.add(rel, "", "file has neither district: nor communes:")
            continue
        if not isinstance(communes, list):
            col.add(rel, "communes", "must be a list of sites", line=getattr(tree, "line", None))
            continue
        lv = [level_defaults[Level.COMMUNE]] if Level.COMMUNE in level_defaults else []
        for i, c in enumerate(communes):
            build(c, rel, f"communes[{i}]", Level.COMMUNE, parent, base_layers + lv + extra)

    if meta is None or services is None:
        raise InventoryError(col.problems)
    data = InventoryData.model_construct(
        province=meta, services=services, defaults=defaults or Defaults(),
        level_defaults=level_defaults, sites=sites,
    )

    def locate(site: Site, path: str) -> tuple[str, str, int | None]:
        file, prefix, raw = where.get(id(site), ("?", "", None))
        loc: tuple[int | str, ...] = tuple(
            int(p) if p.isdigit() else p for p in path.replace("[", ".").replace("]", "").split(".") if p
        )
        return file, f"{prefix}.{path}" if prefix else path, line_of(raw, loc) if raw is not None else None

    col.problems.extend(validate(data, locate))
    if col.problems:
        raise InventoryError(col.problems)
    return Inventory(data, base, sources)


def _load_file(path: Path) -> Inventory:
    rel = path.name
    if path.suffix == ".json":
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InventoryError([Problem(rel, "", "file is missing")]) from None
        except json.JSONDecodeError as exc:
            raise InventoryError([Problem(rel, "", f"malformed JSON: {exc.msg}", line=exc.lineno)]) from None
    else:
        raw, prob = read_yaml(path, rel)
        if prob:
            raise InventoryError([prob])
    col = _Collector(path.parent)
    _scan_secrets(raw, rel, "", col, None)
    try:
        data = InventoryData.model_validate(raw)
    except ValidationError as exc:
        col.from_validation(exc, rel, "", raw, None)
        raise InventoryError(col.problems) from None
    index = {id(s): i for i, s in enumerate(data.sites)}

    def locate(site: Site, p: str) -> tuple[str, str, int | None]:
        return rel, f"sites[{index.get(id(site), '?')}].{p}", None

    col.problems.extend(validate(data, locate))
    if col.problems:
        raise InventoryError(col.problems)
    return Inventory(data, path.parent, {s.id: Source(rel, f"sites[{i}]") for i, s in enumerate(data.sites)})


def load(path: str | Path | None = None) -> Inventory:
    """Load and validate an inventory: a directory, or a single ``.json``/``.yml`` export.

    Raises ``InventoryError`` carrying every problem found (file, field path, site, line).
    """
    p = Path(path) if path is not None else default_inventory_path()
    inv = _load_file(p) if p.suffix in (".json", ".yml", ".yaml") and not p.is_dir() else _load_dir(p)
    logger.debug("loaded inventory %s: %d sites", p, len(inv))
    return inv
