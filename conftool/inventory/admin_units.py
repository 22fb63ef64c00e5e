"""Official GSO administrative units from the vietnamadminunits package (MIT), read offline.

We read its bundled SQLite dataset and its legacy→2025 mapping table directly rather than its address
parser: the parser may geocode over the network for street addresses, and an inventory generator must be
deterministic and work on a machine that reaches nothing.
"""

from __future__ import annotations

import difflib
import json
import logging
import re
import sqlite3
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from conftool.errors import AdminUnitError
from conftool.inventory.model import Era

logger = logging.getLogger(__name__)


def ascii_fold(text: str) -> str:
    """'Điện Biên Phủ' -> 'Dien Bien Phu' (Vietnamese diacritics and đ removed)."""
    text = text.replace("đ", "d").replace("Đ", "D")
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


def slugify(text: str) -> str:
    """ASCII hostname-safe slug: 'Thị trấn Tuần Giáo' -> 'thi-tran-tuan-giao'."""
    s = re.sub(r"[^a-z0-9]+", "-", ascii_fold(text).lower()).strip("-")
    return s or "x"


def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", ascii_fold(text).lower())


@dataclass(frozen=True)
class Unit:
    code: str
    name: str  # full name with type, e.g. "Phường Noong Bua"
    short: str  # e.g. "Noong Bua"
    kind: str  # e.g. "Phường"
    key: str  # the package's ascii key, e.g. "phuongnoongbua"
    parent_code: str | None = None


@dataclass(frozen=True)
class ProvinceUnits:
    era: Era
    province: Unit
    districts: tuple[Unit, ...]  # empty in the 2025 map
    communes: tuple[Unit, ...]


def _package_dir() -> Path:
    import vietnamadminunits

    return Path(vietnamadminunits.__file__).parent


@cache
def _rows(table: str) -> list[dict[str, Any]]:
    db = _package_dir() / "data" / "dataset.db"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        conn.row_factory = sqlite3.Row
        if table == "legacy":
            sql = ("SELECT DISTINCT province, provinceShort, provinceCode, provinceKey, district, districtShort, "
                   "districtType, districtCode, districtKey, ward, wardShort, wardType, wardCode, wardKey "
                   "FROM admin_units_legacy ORDER BY provinceCode, districtCode, wardCode")
        else:
            sql = ("SELECT DISTINCT province, provinceShort, provinceCode, provinceKey, ward, wardShort, wardType, "
                   "wardCode, wardKey FROM admin_units ORDER BY provinceCode, wardCode")
        return [dict(r) for r in conn.execute(sql)]


def _provinces(era: Era) -> dict[str, tuple[str, str, str]]:
    """code -> (full name, short name, key)."""
    out: dict[str, tuple[str, str, str]] = {}
    for r in _rows("legacy" if era == Era.LEGACY else "2025"):
        out.setdefault(r["provinceCode"], (r["province"], r["provinceShort"], r["provinceKey"]))
    return out


def province_names(era: Era) -> list[str]:
    return [short for (_full, short, _k) in _provinces(era).values()]


def find_province(query: str, era: Era = Era.LEGACY) -> ProvinceUnits:
    """A province by code ('11'), name with or without diacritics ('Điện Biên', 'dien bien', 'Tỉnh Điện Biên')."""
    provs = _provinces(era)
    q = query.strip()
    code = None
    if q.isdigit() and q.zfill(2) in provs:
        code = q.zfill(2)
    else:
        qk = _key(q)
        for c, (full, short, _k) in provs.items():
            if qk in (_key(full), _key(short)):
                code = c
                break
    if code is None:
        names = {short: _key(short) for (_f, short, _k) in provs.values()}
        close = difflib.get_close_matches(_key(q), list(names.values()), n=4, cutoff=0.6)
        suggestions = [s for s, k in names.items() if k in close]
        hint = f"did you mean: {', '.join(suggestions)}?" if suggestions else \
            f"known provinces ({era.value} map): {', '.join(sorted(names))}"
        raise AdminUnitError(f"unknown province {query!r} in the {era.value} map — {hint}")
    full, short, pkey = provs[code]
    kind = full[: len(full) - len(short)].strip() or "Tỉnh"
    prov = Unit(code, full, short, kind, pkey)
    rows = [r for r in _rows("legacy" if era == Era.LEGACY else "2025") if r["provinceCode"] == code]
    if era == Era.LEGACY:
        districts: dict[str, Unit] = {}
        communes: list[Unit] = []
        for r in rows:
            dc = r["districtCode"]
            if dc not in districts:
                districts[dc] = Unit(dc, r["district"], r["districtShort"], r["districtType"], r["districtKey"], code)
            if r["wardCode"]:
                communes.append(Unit(r["wardCode"], r["ward"], r["wardShort"], r["wardType"], r["wardKey"], dc))
        return ProvinceUnits(era, prov, tuple(districts.values()), tuple(communes))
    return ProvinceUnits(era, prov, (), tuple(
        Unit(r["wardCode"], r["ward"], r["wardShort"], r["wardType"], r["wardKey"], code) for r in rows
    ))


@cache
def _converter() -> dict[str, Any]:
    with open(_package_dir() / "data" / "converter_2025.json", encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data


@cache
def _new_by_key() -> dict[tuple[str, str], Unit]:
    return {(r["provinceKey"], r["wardKey"]): Unit(r["wardCode"], r["ward"], r["wardShort"], r["wardType"],
                                                   r["wardKey"], r["provinceCode"]) for r in _rows("2025")}


def to_2025(province: Unit, district: Unit, commune: Unit) -> Unit | None:
    """The 2025 commune a legacy commune became part of (the package's default where a commune was split)."""
    conv = _converter()
    new_prov = next((k for k, v in conv["DICT_PROVINCE"].items() if province.key in v), None)
    if new_prov is None:
        return None
    old = f"{province.key}_{district.key}_{commune.key}"
    new_ward = None
    for k, olds in conv["DICT_PROVINCE_WARD_NO_DIVIDED"].get(new_prov, {}).items():
        if old in olds:
            new_ward = k
            break
    if new_ward is None:
        split = conv["DICT_PROVINCE_WARD_DIVIDED"].get(new_prov, {}).get(old, [])
        new_ward = next((w["newWardKey"] for w in split if w.get("isDefaultNewWard")), None)
    if new_ward is None:
        return None
    return _new_by_key().get((new_prov, new_ward))


def communes_2025_of(province: Unit) -> dict[str, str]:
    """code -> name of today's communes of the 2025 province that a legacy province merged into."""
    conv = _converter()
    new_prov = next((k for k, v in conv["DICT_PROVINCE"].items() if province.key in v), None)
    return {u.code: u.name for (pk, _wk), u in sorted(_new_by_key().items(), key=lambda kv: kv[1].code)
            if pk == new_prov}
