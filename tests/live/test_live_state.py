"""The fold of events into a meeting's live state (pure logic, case tables): the same code rebuilds it on restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from meeting.services.live import MeetingLive, SiteLive, apply

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
