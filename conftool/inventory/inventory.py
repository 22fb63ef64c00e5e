"""The loaded inventory: indexes over the sites, the site tree, and selectors (DESIGN §9)."""

from __future__ import annotations

import fnmatch
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from conftool.errors import SelectorError
from conftool.inventory.model import (
    Device,
    Era,
    InventoryData,
    Level,
    LinkKind,
    ProvinceMeta,
    Services,
    Site,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Source:
    """Where a site was defined, for error messages and for `inventory show`."""

    file: str
    path: str
    line: int | None = None


@dataclass
class Inventory:
    """A validated inventory. Flows take one of these, never a path.

    ``select()`` returns a new Inventory holding only the chosen sites (province meta and services stay),
    the way Nornir's ``filter()`` does.
    """

    data: InventoryData
    base_dir: Path | None = None
    sources: dict[str, Source] = field(default_factory=dict)
    _by_id: dict[str, Site] = field(init=False, repr=False)
    _children: dict[str, list[str]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_id = {s.id: s for s in self.data.sites}
        self._children = {}
        for s in self.data.sites:
            if s.parent is not None:
                self._children.setdefault(s.parent, []).append(s.id)

    # ----- basic access -------------------------------------------------------------------
    @property
    def province(self) -> ProvinceMeta:
        return self.data.province

    @property
    def services(self) -> Services:
        return self.data.services

    @property
    def era(self) -> Era:
        return self.data.province.era

    @property
    def sites(self) -> list[Site]:
        return self.data.sites

    def __len__(self) -> int:
        return len(self.data.sites)

    def __iter__(self) -> Iterator[Site]:
        return iter(self.data.sites)

    def __contains__(self, site_id: object) -> bool:
        return site_id in self._by_id

    def get(self, site_id: str) -> Site:
        try:
            return self._by_id[site_id]
        except KeyError:
            raise SelectorError(f"no site with id {site_id!r} in the inventory") from None

    def find(self, site_id: str) -> Site | None:
        return self._by_id.get(site_id)

    def children(self, site_id: str) -> list[Site]:
        return [self._by_id[c] for c in self._children.get(site_id, []) if c in self._by_id]

    def parent(self, site: Site) -> Site | None:
        return self._by_id.get(site.parent) if site.parent else None

    def district_of(self, site: Site) -> Site | None:
        """The legacy district a site belongs to (itself for a district), or None."""
        if site.level == Level.DISTRICT:
            return site
        p = self.parent(site)
        return p if p is not None and p.level == Level.DISTRICT else None

    def by_level(self, level: Level | str) -> list[Site]:
        lv = Level(level)
        return [s for s in self.data.sites if s.level == lv]

    def devices(self) -> Iterator[tuple[Site, Device]]:
        for s in self.data.sites:
            for d in s.devices:
                yield s, d

    def device(self, hostname: str) -> tuple[Site, Device]:
        for s, d in self.devices():
            if d.hostname == hostname:
                return s, d
        raise SelectorError(f"no device with hostname {hostname!r} in the inventory")

    def counts(self) -> dict[str, int]:
        c = Counter(s.level.value for s in self.data.sites)
        return {lv.value: c.get(lv.value, 0) for lv in Level}

    def link_counts(self) -> dict[str, int]:
        c = Counter(lk.kind.value for s in self.data.sites for lk in s.links)
        return {k.value: c.get(k.value, 0) for k in LinkKind}

    # ----- selectors ------------------------------------------------------------------------
    def _match_term(self, term: str) -> list[Site]:
        if term.startswith("level:"):
            want = term[6:]
            try:
                lv = Level(want)
            except ValueError:
                raise SelectorError(
                    f"selector {term!r}: unknown level {want!r}; use level:province, level:district "
                    "or level:commune"
                ) from None
            return self.by_level(lv)
        if term.startswith("district:"):
            key = term[9:]
            d = self._by_id.get(key)
            if d is None or d.level != Level.DISTRICT:
                d = next((s for s in self.by_level(Level.DISTRICT) if s.slug == key), None)
            if d is None:
                names = ", ".join(f"{s.id} ({s.slug})" for s in self.by_level(Level.DISTRICT)) or "none"
                raise SelectorError(f"selector {term!r}: no district with that id or slug; districts: {names}")
            return [d, *self.children(d.id)]
        if term in self._by_id:
            return [self._by_id[term]]
        return [s for s in self.data.sites if fnmatch.fnmatchcase(s.slug, term)]

    def select(self, selector: str | list[str] | None) -> Inventory:
        """Sites matching a selector: an id, a slug glob, ``level:X``, ``district:ID-or-slug``.

        Several selectors (a list, or comma-separated) give the union. A selector that matches nothing is an
        error rather than an empty run, because it is almost always a typo.
        """
        if selector is None or selector == "" or selector == []:
            return self
        terms: list[str] = []
        for part in [selector] if isinstance(selector, str) else selector:
            terms.extend(t.strip() for t in part.split(",") if t.strip())
        chosen: set[str] = set()
        for term in terms:
            hits = self._match_term(term)
            if not hits:
                raise SelectorError(
                    f"selector {term!r} matches no site; use a site id (e.g. {self.data.sites[0].id}), "
                    "a slug glob (e.g. 'muong-*'), level:commune or district:<id-or-slug>"
                )
            chosen.update(s.id for s in hits)
        sites = [s for s in self.data.sites if s.id in chosen]
        data = self.data.model_copy(update={"sites": sites})
        return Inventory(data, self.base_dir, {k: v for k, v in self.sources.items() if k in chosen})

    def site_ids(self) -> list[str]:
        return [s.id for s in self.data.sites]
