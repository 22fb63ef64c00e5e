"""One translation mechanism for pages, API messages and the CLI: Vietnamese msgids, Babel .po for English.

Vietnamese (with diacritics) is the source language, so a missing translation still shows correct Vietnamese.
Catalogs are read straight from the .po files with Babel (no compile step, nothing to forget at install).
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

logger = logging.getLogger(__name__)

LOCALE_DIR = Path(__file__).parent / "web" / "locale"
LANGS = ("vi", "en")
DEFAULT_LANG = "vi"


@functools.cache
def _catalog(lang: str) -> dict[str, str]:
    if lang == DEFAULT_LANG:
        return {}
    from babel.messages.pofile import read_po

    path = LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
    if not path.is_file():
        logger.warning("no catalog for %s at %s", lang, path)
        return {}
    with path.open("rb") as fh:
        cat = read_po(fh, locale=lang)
    return {str(m.id): str(m.string) for m in cat if m.id and m.string and isinstance(m.id, str)}


def normalize_lang(lang: str | None) -> str:
    if not lang:
        return DEFAULT_LANG
    code = lang.strip().lower()[:2]
    return code if code in LANGS else DEFAULT_LANG


def translate(msgid: str, lang: str = DEFAULT_LANG) -> str:
    """The text of ``msgid`` in ``lang``; the Vietnamese msgid itself when there is no translation."""
    return _catalog(normalize_lang(lang)).get(msgid, msgid)


def gettext_for(lang: str) -> functools.partial[str]:
    return functools.partial(_gettext, lang=normalize_lang(lang))


def _gettext(msgid: str, lang: str = DEFAULT_LANG, **params: object) -> str:
    text = translate(msgid, lang)
    return text.format(**params) if params else text


def bilingual(msgid: str, **params: object) -> str:
    """'Vietnamese / English' for logs-free places that must speak to both (CLI errors, API msg)."""
    vi = _gettext(msgid, "vi", **params)
    en = _gettext(msgid, "en", **params)
    return vi if vi == en else f"{vi} / {en}"
