"""One translation mechanism: every Vietnamese msgid the code and templates use has an English translation."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from meeting.api.errors import BUILTIN
from meeting.i18n import LOCALE_DIR, _catalog, translate
from meeting.web.pages import ROLE_NAMES

PKG = Path(__file__).resolve().parents[2] / "meeting"
CALLS = {
    "_",
    "translate",
    "Reason",
    "InvalidInput",
    "NotFound",
    "Forbidden",
    "AuthError",
    "RateLimited",
    "InvalidToken",
    "Conflict",
    "MeetingError",
    "RRuleError",
    "LiveError",
    "bilingual",
    "__init__",
}


def _msgids() -> set[str]:
    ids: set[str] = set(BUILTIN.values()) | set(ROLE_NAMES.values())
    for p in PKG.rglob("*.py"):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Call):
                name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
                args = node.args[:1] if name in CALLS else node.args[1:2] if name == "custom_error" else []
                ids.update(a.value for a in args if isinstance(a, ast.Constant) and isinstance(a.value, str))
            elif isinstance(node, ast.Tuple) and len(node.elts) == 2:  # (key, msgid) tables such as _METRICS
                ids.update(
                    e.value
                    for e in node.elts[1:]
                    if isinstance(e, ast.Constant) and isinstance(e.value, str) and "{" in e.value
                )
    ids = {i for i in ids if re.search(r"[^\x00-\x7f]", i)}
    for p in (PKG / "web" / "templates").glob("*.html"):
        ids.update(m.group(2) for m in re.finditer(r"""_\(\s*(["'])(.+?)\1\s*\)""", p.read_text()))
    return ids


def test_every_msgid_has_english() -> None:
    ids = _msgids()
    assert len(ids) > 80
    missing = sorted(i for i in ids if translate(i, "en") == i)
    assert not missing, missing
    assert (LOCALE_DIR / "en" / "LC_MESSAGES" / "messages.po").is_file()
    # no stale entries either: the catalog only holds what the code uses
    assert set(_catalog("en")) - ids == set()


def test_vietnamese_is_the_default_and_keeps_diacritics() -> None:
    assert translate("Sẵn sàng {ready}/{total}") == "Sẵn sàng {ready}/{total}"
    assert translate("Sẵn sàng {ready}/{total}", "en") == "Ready {ready}/{total}"
    assert translate("Đăng nhập", "fr") == "Đăng nhập"
