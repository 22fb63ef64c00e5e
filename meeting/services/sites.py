"""Sites come only from the inventory (`conftool.inventory.load`): import, archive, tree, selectors."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from conftool.inventory import Inventory, Level
from conftool.inventory.admin_units import ascii_fold
from meeting.errors import InvalidInput, NotFound
from meeting.models import Site, utcnow

logger = logging.getLogger(__name__)


@dataclass
class SyncResult:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    archived: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)

    @property
    def summary(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.__dict__.items()}


def _row_values(site: Any) -> dict[str, Any]:
    return {
        "name": site.name,
        "name_ascii": ascii_fold(site.name).lower(),
        "full_name": site.full_name,
        "slug": site.slug,
        "level": site.level.value,
        "parent_id": site.parent,
        "kind": site.kind,
        "emails": [c.email for c in site.contacts if c.email],
        "thresholds": site.thresholds.model_dump(),
    }


def sync(session: Session, inventory: Inventory) -> SyncResult:
    """Make the site table match the inventory. Idempotent; a site gone from the inventory is archived."""
    result = SyncResult()
    existing = {s.id: s for s in session.scalars(select(Site))}
    seen: set[str] = set()
    now = utcnow()
    for inv_site in inventory.sites:
        seen.add(inv_site.id)
        values = _row_values(inv_site)
        row = existing.get(inv_site.id)
        if row is None:
            session.add(Site(id=inv_site.id, synced_at=now, archived_at=None, **values))
            result.added.append(inv_site.id)
            continue
        changed = any(getattr(row, k) != v for k, v in values.items())
        if row.archived_at is not None:
            row.archived_at = None
            result.restored.append(inv_site.id)
        elif changed:
            result.updated.append(inv_site.id)
        else:
            result.unchanged.append(inv_site.id)
        if changed:
            for k, v in values.items():
                setattr(row, k, v)
            row.synced_at = now
    for sid, row in existing.items():
        if sid not in seen and row.archived_at is None:
            row.archived_at = now
            result.archived.append(sid)
    session.flush()
    logger.info("sites sync: %s", result.summary)
    return result


def active_sites(session: Session) -> list[Site]:
    return list(session.scalars(select(Site).where(Site.archived_at.is_(None)).order_by(Site.id)))


def get_site(session: Session, site_id: str, *, allow_archived: bool = False) -> Site:
    site = session.get(Site, site_id)
    if site is None or (site.archived_at is not None and not allow_archived):
        raise NotFound("Không có điểm cầu {site}", field="site", site=site_id)
    return site


def tree(session: Session) -> list[dict[str, Any]]:
    """province → district → commune, as nested dicts for the picker and `/api/v1/sites/tree`."""
    sites = active_sites(session)
    by_parent: dict[str | None, list[Site]] = {}
    for s in sites:
        by_parent.setdefault(s.parent_id, []).append(s)
    ids = {s.id for s in sites}

    def node(s: Site) -> dict[str, Any]:
        kids = sorted(by_parent.get(s.id, []), key=lambda c: c.name_ascii)
        return {
            "id": s.id,
            "name": s.name,
            "full_name": s.full_name,
            "level": s.level,
            "slug": s.slug,
            "children": [node(c) for c in kids],
        }

    roots = [s for s in sites if s.parent_id is None or s.parent_id not in ids]
    return [node(r) for r in roots]


def search(session: Session, query: str, limit: int = 50) -> list[Site]:
    """Sites whose name or slug contains ``query``, with or without diacritics ('muong nhe' → 'Mường Nhé')."""
    q = ascii_fold(query).lower().strip()
    sites = active_sites(session)
    if not q:
        return sites[:limit]
    slug_q = q.replace(" ", "-")
    hits = [s for s in sites if q in s.name_ascii or slug_q in s.slug or q == s.id]
    return hits[:limit]


@dataclass(frozen=True)
class _Row:
    id: str
    level: str
    parent_id: str | None
    slug: str


def expand(session: Session, selectors: Sequence[str]) -> list[str]:
    """Site ids chosen by picker selectors: ``all``, ``level:commune``, ``district:ID-or-slug``, a site id.

    ``district:X`` means the communes of that district (the district's own room joins only when chosen
    itself). Unknown selectors or sites are an error naming them, never silently dropped.
    """
    sites = [
        _Row(*r)
        for r in session.execute(
            select(Site.id, Site.level, Site.parent_id, Site.slug)
            .where(Site.archived_at.is_(None))
            .order_by(Site.id)
        ).tuples()
    ]
    by_id = {s.id: s for s in sites}
    chosen: dict[str, None] = {}
    unknown: list[str] = []
    for raw in selectors:
        term = raw.strip()
        if not term:
            continue
        if term == "all":
            hits = [s.id for s in sites]
        elif term.startswith("level:"):
            lv = term[6:]
            if lv not in {lvl.value for lvl in Level}:
                unknown.append(term)
                continue
            hits = [s.id for s in sites if s.level == lv]
        elif term.startswith("district:"):
            key = term[9:]
            d = by_id.get(key)
            if d is None or d.level != Level.DISTRICT.value:
                d = next((s for s in sites if s.level == Level.DISTRICT.value and s.slug == key), None)
            if d is None:
                unknown.append(term)
                continue
            hits = [s.id for s in sites if s.parent_id == d.id]
        elif term in by_id:
            hits = [term]
        else:
            unknown.append(term)
            continue
        chosen.update(dict.fromkeys(hits))
    if unknown:
        raise InvalidInput("Không có điểm cầu {site}", field="participants", site=", ".join(unknown))
    return list(chosen)


def names(session: Session, ids: Iterable[str]) -> dict[str, str]:
    wanted = list(ids)
    if not wanted:
        return {}
    rows = session.execute(select(Site.id, Site.full_name).where(Site.id.in_(wanted)))
    return {r[0]: r[1] for r in rows}
