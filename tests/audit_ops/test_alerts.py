"""Alerts on change only, after N consecutive runs, silenced by maintenance, never lost when a channel breaks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from conftool.audit.alerts import Alerter, AlertState, SmtpChannel, WebhookChannel, compose, make_channel
from conftool.audit.errors import AuditError
from conftool.audit.maintenance import MaintenanceBook, inventory_windows
from conftool.audit.results import RunRecord, Status
from conftool.audit.store import AuditStore
from conftool.inventory import Inventory
from tests.audit_ops.conftest import Mailbox, Receiver, make_run

T0 = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)
DOWN = {("03154", "dedicated"): Status.FAIL}


def runs(store: AuditStore, pattern: list[dict[tuple[str, str], Status]]) -> list[RunRecord]:
    out = []
    for i, faults in enumerate(pattern):
        r = make_run(T0 + timedelta(hours=4 * i), faults)
        store.save(r)
        out.append(r)
    return out


def changes(state: AlertState, recs: list[RunRecord]) -> list[list[tuple[str, str, str]]]:
    return [[(e.change, e.finding.site, e.finding.kind) for e in state.evaluate(r).events] for r in recs]


def test_change_after_n_consecutive_runs(db_url: str, inv: Inventory) -> None:
    with AuditStore(db_url) as st:
        recs = runs(st, [{}, DOWN, DOWN, DOWN, {}, {}, {}])
        got = changes(AlertState(st.engine, inv, consecutive=2), recs)
    assert got == [[], [], [("failure", "03154", "dedicated")], [], [], [("recovery", "03154", "dedicated")], []]


def test_flapping_link_does_not_alert(db_url: str, inv: Inventory) -> None:
    with AuditStore(db_url) as st:
        recs = runs(st, [{}, DOWN, {}, DOWN, {}, DOWN, {}])
        got = changes(AlertState(st.engine, inv, consecutive=2), recs)
    assert got == [[]] * 7


def test_state_survives_a_restart(tmp_path: object, inv: Inventory) -> None:
    url = f"sqlite:///{tmp_path}/a.db"
    with AuditStore(url) as st:
        recs = runs(st, [DOWN, DOWN, {}])
        assert changes(AlertState(st.engine, inv, consecutive=2), recs[:1]) == [[]]
    with AuditStore(url) as st:  # a new process: the streak is in the database
        assert changes(AlertState(st.engine, inv, consecutive=2), recs[1:2]) == [[("failure", "03154", "dedicated")]]


def test_maintenance_silences_then_alerts_what_outlasts_it(tmp_path: object, fresh_inv: Inventory) -> None:
    url = f"sqlite:///{tmp_path}/a.db"
    # district 096 in maintenance 08:00-15:00 local (01:00-08:00 UTC); it covers its commune 03154
    fresh_inv.get("096").vars["maintenance"] = [{"start": "2026-11-22T08:00", "end": "2026-11-22T15:00",
                                                 "reason": "VNPT thay PE"}]
    with AuditStore(url) as st:
        book = MaintenanceBook(st.engine, fresh_inv)
        assert [w.source for w in book.windows()] == ["inventory"]
        assert "03154" in book.silenced(T0 + timedelta(hours=1)) and "03154" not in book.silenced(T0 + timedelta(
            hours=11))
        state = AlertState(st.engine, fresh_inv, consecutive=1, maintenance=book)
        recs = runs(st, [DOWN, DOWN, DOWN, {}])  # 01:00, 05:00 (in window) 09:00, 13:00 (after) UTC
        got = []
        for r in recs:
            ev = state.evaluate(r, now=r.started_at)
            got.append(([e.change for e in ev.events], len(ev.silenced)))
    assert got == [([], 1), ([], 1), (["failure"], 0), (["recovery"], 0)]


def test_db_window_and_fixed_inside_window(db_url: str, inv: Inventory) -> None:
    with AuditStore(db_url) as st:
        book = MaintenanceBook(st.engine, inv)
        w = book.add("03154", T0 - timedelta(hours=1), T0 + timedelta(hours=6), "thay thiết bị")
        assert w.id is not None and [x.id for x in book.windows(active_at=T0)] == [w.id]
        state = AlertState(st.engine, inv, consecutive=1, maintenance=book)
        recs = runs(st, [DOWN, {}, {}])  # down and repaired inside the window: nothing to say afterwards
        assert [state.evaluate(r, now=r.started_at).events for r in recs] == [[], [], []]
        assert book.remove(w.id) and not book.remove(w.id)
        with pytest.raises(AuditError, match="not after start"):
            book.add("03154", T0, T0)


def test_bad_inventory_window_names_the_site(fresh_inv: Inventory) -> None:
    fresh_inv.get("03154").vars["maintenance"] = [{"start": "tomorrow", "end": "2026-11-23T00:00"}]
    with pytest.raises(AuditError, match=r"site 03154 vars.maintenance\[0\].start: 'tomorrow'"):
        inventory_windows(fresh_inv)


def test_compose_one_message_per_recipient(tmp_path: object, inv: Inventory) -> None:
    url = f"sqlite:///{tmp_path}/a.db"
    with AuditStore(url) as st:
        faults = {**DOWN, ("03151", "internet"): Status.FAIL}
        recs = runs(st, [faults])
        ev = AlertState(st.engine, inv, consecutive=1).evaluate(recs[0]).events
    batch = compose(recs[0], ev, inv.province.name, ["noc@dienbien.gov.vn"])
    assert [m["to"] for m in batch["mails"]] == [["noc@dienbien.gov.vn"], ["cntt.na-lay@dienbien.gov.vn"],
                                                 ["cntt.sin-thau@dienbien.gov.vn"]]
    noc = batch["mails"][0]
    assert noc["subject"].startswith("[Liên Thông] 2 lỗi mới")
    assert "LỖI MỚI (2)" in noc["body"] and "Xã Sín Thầu (03154) — mạng TSLCD" in noc["body"]
    assert "Na Lay" not in batch["mails"][2]["body"]  # a commune sees only its own site


def test_urls_never_carry_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(AuditError, match="do not put a password"):
        make_channel("smtp://noc:secret@127.0.0.1:25", sender="a@b")
    monkeypatch.setenv("LT_TEST_SMTP_PW", "s3cret")
    ch = make_channel("smtp://noc@127.0.0.1:2525", sender="a@b", smtp_password="env:LT_TEST_SMTP_PW")
    assert isinstance(ch, SmtpChannel) and ch.name == "smtp://noc@127.0.0.1:2525" and "s3cret" not in repr(
        vars(ch))
    assert isinstance(make_channel("http://127.0.0.1:9/h?x=1", sender="a@b"), WebhookChannel)
    with pytest.raises(AuditError, match="expected smtp"):
        make_channel("ftp://x", sender="a@b")


def test_broken_channel_is_retried_next_run(db_url: str, inv: Inventory, smtp_server: Mailbox,
                                            http_receiver: Receiver) -> None:
    url = db_url
    dead = f"smtp://127.0.0.1:{_closed_port()}"
    with AuditStore(url) as st:
        channels = [make_channel(smtp_server.url, sender="noc@localhost"),
                    make_channel(http_receiver.url, sender="noc@localhost"), make_channel(dead, sender="x@y")]
        alerter = Alerter(st.engine, inv, channels, noc=["noc@dienbien.gov.vn"], consecutive=1)
        http_receiver.fail = True
        recs = runs(st, [DOWN, DOWN, {}])
        r1 = alerter.process(recs[0])
        assert r1["events"] == 1 and r1["sent"] == 1 and r1["failed"] == 2 and r1["pending"] == 2
        assert len(smtp_server.messages) == 2 and http_receiver.posts == []
        http_receiver.fail = False
        r2 = alerter.process(recs[1])  # no new event, but the webhook's pending batch goes out now
        assert r2["events"] == 0 and r2["sent"] == 1 and r2["pending"] == 1
        assert [p["run"] for p in http_receiver.posts] == [recs[0].id]
        r3 = alerter.process(recs[2])
        assert r3["events"] == 1 and [p["events"][0]["change"] for p in http_receiver.posts] == ["failure",
                                                                                               "recovery"]
        with st.engine.connect() as c:
            rows = c.execute(sa.text("SELECT channel, attempts FROM audit_alert_outbox WHERE sent_at IS NULL")).all()
        assert [r.channel for r in rows] == [dead, dead] and rows[0].attempts == 3


def _closed_port() -> int:
    from tests.audit_ops.conftest import free_port

    return free_port()  # bound then released: nothing listens there
