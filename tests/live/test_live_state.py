"""The fold of events into a meeting's live state (pure logic, case tables): the same code rebuilds it on restart;
and the rehearsal judge's wait for the sites' reports (timing logic; real agents and a real browser do the whole
rehearsal in tests/live/test_live_netns.py and tests/browser/test_browser_media.py)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from meeting.services.live import (
    REHEARSAL_REPORT_WAIT_S,
    REHEARSAL_TAIL_S,
    LiveService,
    MeetingLive,
    Round,
    SiteLive,
    apply,
)

T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # 08:00 in Vietnam


def _ml() -> MeetingLive:
    sites = {sid: SiteLive(sid, sid, "", sid == "11") for sid in ("11", "03160", "03163")}
    return MeetingLive(1, 7, T0, T0 + timedelta(hours=1), "11", 1, sites)


def _fold(*events: tuple[str, str | None]) -> MeetingLive:
    ml = _ml()
    for i, (action, site) in enumerate(events):
        apply(ml, action, site, {}, T0 - timedelta(minutes=30) + timedelta(seconds=i))
    return ml


@pytest.mark.parametrize(("events", "minutes", "state"), [
    ((), -10, "idle"),
    ((), 10, "live"),  # the scheduled start has passed: live unless stopped
    ((), 61, "ended"),
    ((("rehearsal", None),), -10, "rehearsal"),
    ((("rehearsal", None),), 10, "live"),
    ((("start", None),), -10, "live"),
    ((("start", None), ("rehearsal", None)), -10, "live"),  # a test during the meeting keeps it live
    ((("start", None), ("stop", None)), 10, "ended"),
    ((("stop", None), ("start", None)), 10, "live"),  # started again after a stop
])
def test_state(events: tuple[tuple[str, str | None], ...], minutes: int, state: str) -> None:
    assert _fold(*events).current_state(T0 + timedelta(minutes=minutes)) == state


def test_floor_hands_mute_and_removal() -> None:
    ml = _fold(("hand_raised", "03160"), ("floor_granted", "03160"))
    assert ml.floor == "03160" and ml.sites["03160"].hand is False  # granting lowers the hand
    assert _fold(("floor_granted", "03160"), ("floor_revoked", "03160")).floor is None
    assert _fold(("floor_granted", "03160"), ("floor_granted", "11")).floor is None  # to the hall = revoke
    ml = _fold(("floor_granted", "03160"), ("remove", "03160"))
    assert ml.floor is None and ml.sites["03160"].removed
    ml = _fold(("mute", "03160"), ("mute", "03163"), ("unmute", "03163"))
    assert (ml.sites["03160"].muted, ml.sites["03163"].muted) == (True, False)
    ml = _fold(("join", "03160"), ("drop", "03160"), ("join", "03163"), ("leave", "03163"))
    assert (ml.sites["03160"].socket, ml.sites["03163"].socket) == ("dropped", "left")
    assert _fold(("floor_granted", "03160"), ("stop", None)).floor is None
    ml = _fold(("mute", "99999"), ("hand_raised", None))  # unknown or missing sites change nothing
    assert not any(s.muted or s.hand for s in ml.sites.values())


class _Published:
    """The SFU's per-site counters as ``LiveService._judge`` reads them (``link(room, site)["published"]``)."""

    def __init__(self) -> None:
        self.counts = {"03160": {"video": 0, "audio": 0}, "03163": {"video": 0, "audio": 0}}

    def link(self, room: str, site: str) -> dict[str, Any] | None:
        return {"published": dict(self.counts[site])}


class _Judged(LiveService):
    """The live service without a database: the results the judge would store are kept in a dict."""

    def __init__(self, sfu: _Published) -> None:
        super().__init__(SimpleNamespace(sfu=sfu))
        self.results: dict[str, dict[str, Any]] = {}

    async def record(self, ml: MeetingLive, actor: str, action: str, site_id: str | None = None,
                     detail: dict[str, Any] | None = None) -> None:
        assert action == "rehearsal_result" and site_id is not None
        self.results[site_id] = detail or {}


def test_rehearsal_waits_for_late_reports_and_judges_once_all_are_in() -> None:
    """A browser on a loaded room PC reports a few seconds after the test; that must still count as received
    (a fixed 2.5-s wait judged it "nothing received"), and the judge must not wait out its cap once all are in."""
    async def run() -> tuple[_Judged, float]:
        sfu = _Published()
        live = _Judged(sfu)
        ml = _ml()
        rnd = Round(1, {"03160": {"video": 0, "audio": 0}, "03163": {"video": 0, "audio": 0}})
        ml.round = rnd
        t0 = time.monotonic()
        judge = asyncio.create_task(live._judge(ml, rnd))
        sfu.counts = {"03160": {"video": 15, "audio": 50}, "03163": {"video": 0, "audio": 50}}
        await asyncio.sleep(1.0 + REHEARSAL_TAIL_S + 0.2)
        rnd.report("03160", {"video_frames": 40, "audio_packets": 150})
        await asyncio.sleep(2.0)  # 3.7 s after the start: past the old fixed window (1 + 2.5 s)
        assert not judge.done()
        rnd.report("03163", {"video_frames": 0, "audio_packets": 0})
        await asyncio.wait_for(judge, 2)
        return live, time.monotonic() - t0

    live, took = asyncio.run(run())
    assert took < 1.0 + REHEARSAL_TAIL_S + REHEARSAL_REPORT_WAIT_S - 1, took  # judged when the last report came
    assert live.results["03160"]["received_ok"] is True and live.results["03160"]["video_ok"] is True
    assert live.results["03163"]["received_ok"] is False and live.results["03163"]["video_ok"] is False
    assert live.results["03163"]["audio_ok"] is True


def test_rehearsal_judges_a_silent_site_as_not_received_after_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("meeting.services.live.REHEARSAL_REPORT_WAIT_S", 0.5)

    async def run() -> _Judged:
        live = _Judged(_Published())
        ml = _ml()
        rnd = Round(1, {"03160": {"video": 0, "audio": 0}})
        ml.round = rnd
        await asyncio.wait_for(live._judge(ml, rnd), 5)
        assert ml.round is None  # the round is over: a late report no longer lands anywhere
        return live

    got = asyncio.run(run()).results["03160"]
    assert got["received_ok"] is False and got["received"] is None and got["video_ok"] is False
