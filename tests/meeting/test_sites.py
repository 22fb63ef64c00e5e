"""Sites come only from the inventory: idempotent sync, removed sites archived, search folds diacritics."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from conftool.inventory import load
from meeting.db import make_engine, make_sessionmaker, session_scope
from meeting.models import Site
from meeting.services import sites
from tests.meeting.conftest import Service, meeting_body


def test_sync_is_idempotent_and_archives(service: Service, reference_inventory: Path) -> None:
    h = service.h("secretariat")
    m = service.client.post(
        "/api/v1/meetings", json=meeting_body(participants=["03158", "03160"]), headers=h
    ).json()
    with service.session() as s:
        again = sites.sync(s, load(reference_inventory))
        s.commit()
        assert again.summary == {"added": 0, "updated": 0, "unchanged": 140, "archived": 0, "restored": 0}
    # the inventory without commune 03158 (a selection of the loaded inventory, no YAML parsed here)
    inv = load(reference_inventory)
    smaller = inv.select([sid for sid in inv.site_ids() if sid != "03158"])
    with service.session() as s:
        res = sites.sync(s, smaller)
        s.commit()
        assert res.archived == ["03158"]
        row = s.get(Site, "03158")
        assert row is not None and row.archived_at is not None
    # the old meeting keeps its attendance; new meetings cannot pick the archived site
    assert "03158" in service.client.get(f"/api/v1/meetings/{m['id']}", headers=h).json()["participants"]
    r = service.client.post(
        "/api/v1/meetings", json=meeting_body(participants=["03158"], host_site="094"), headers=h
    )
    assert r.status_code == 422
    with service.session() as s:
        back = sites.sync(s, inv)
        s.commit()
        assert back.restored == ["03158"]


def test_search_with_and_without_diacritics(service: Service) -> None:
    for q in ("Mường Nhé", "muong nhe", "MUONG-NHE"):
        r = service.client.get("/api/v1/sites", params={"q": q}, headers=service.h("operator"))
        assert r.status_code == 200
        assert "096" in {s["id"] for s in r.json()}, q


def test_selectors_and_tree(service: Service) -> None:
    with service.session() as s:
        assert len(sites.expand(s, ["level:commune"])) == 129
        assert len(sites.expand(s, ["district:muong-nhe"])) == 11
        assert sites.expand(s, ["district:096"]) == sites.expand(s, ["district:muong-nhe"])
        assert len(sites.expand(s, ["all"])) == 140
    tree = service.client.get("/api/v1/sites/tree", headers=service.h("engineer")).json()
    assert len(tree) == 1 and tree[0]["id"] == "11" and len(tree[0]["children"]) == 10
    assert sum(len(d["children"]) for d in tree[0]["children"]) == 129


def test_cli_sync_json(db_url: str, reference_inventory: Path, state_dir: Path) -> None:
    from typer.testing import CliRunner

    from meeting.cli import app

    runner = CliRunner()
    r = runner.invoke(
        app, ["sites", "sync", "--inventory", str(reference_inventory), "--db", db_url, "--json"]
    )
    assert r.exit_code == 0, r.output
    import json

    doc = json.loads(r.stdout)
    assert doc["summary"]["added"] == 140 and doc["items"][0]["kind"] == "site"
    engine = make_engine(db_url)
    try:
        with session_scope(make_sessionmaker(engine)) as s:
            assert len(list(s.scalars(select(Site)))) == 140
    finally:
        engine.dispose()
    bad = runner.invoke(app, ["sites", "sync", "--inventory", str(state_dir / "missing"), "--db", db_url])
    assert bad.exit_code == 2 and "Traceback" not in bad.output
