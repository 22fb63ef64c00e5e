"""Live control of a meeting (issue 11): its state, floor, hands, mute, removals and rehearsal — logged as events.

The secretariat acts through the REST API (meeting.api.routes.live), the sites through the signaling socket; both
end here. Every change is first written to ``meeting_events`` and then applied to the in-memory state by the same
:func:`apply` that rebuilds the state from the events after a restart, so what the console shows and what the
database says cannot drift apart (the floor holder, muted and removed sites survive a server restart).

What is NOT in the events: who is connected right now. That comes from the live signaling sockets (the registry
``app.state.signaling`` of meeting.api.routes.ws) and the SFU's peer connections, so a server restart shows every
site as ``dropped`` until its agent is back. Link figures come from the SFU's monitor (RTCP receiver reports and
byte counters); they are read at most once a second per meeting, whoever asks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from meeting.errors import Forbidden, InvalidInput, MeetingError
from meeting.media.sfu import Sfu
from meeting.media.signaling import SignalingSession
from meeting.models import Meeting, MeetingEvent, Occurrence, Site, User, UserRole, utcnow
from meeting.services import meetings as svc
from meeting.services.recurrence import to_local

logger = logging.getLogger(__name__)

STATES = ("idle", "rehearsal", "live", "ended")
SITE_STATES = ("invited", "connecting", "connected", "dropped", "removed")
ACTIONS = ("start", "stop", "rehearsal", "rehearsal_result", "join", "leave", "drop", "hand_raised", "hand_lowered",
           "floor_granted", "floor_revoked", "mute", "unmute", "remove")
STATS_EVERY_S = 1.0
REHEARSAL_REPORT_WAIT_S = 6.0
"""After a rehearsal's N seconds (+ the tail), wait at most this long for the sites' reports; judged as soon as every
site has reported. A browser reports after stopping its tracks and a ``getStats()``: on a loaded room PC that took
more than the 2.5 s this used to be, and a report that arrived late was judged as "nothing received"."""
REHEARSAL_TAIL_S = 0.5
"""Frames still in flight after the N seconds: counted this long after the end."""
VIDEO_MIN_FPS = 5.0
"""A camera test passes at this many frames per second arriving at the SFU (the test source sends 15)."""
AUDIO_MIN_PPS = 25.0
"""A microphone test passes at this many audio packets per second (Opus sends 50 with 20 ms frames)."""
REHEARSAL_SECONDS = (2, 60)


class LiveError(MeetingError):
    """A live-control request that does not fit the meeting's present state (e.g. the floor to an absent site)."""

    http_status = 409


class SiteLink(Protocol):
    """One site's open signaling socket, as the registry of meeting.api.routes.ws holds it."""

    session: SignalingSession
    end_reason: str | None

    async def refuse(self, code: str) -> None: ...


@dataclass
class SiteLive:
    """What the events say about one invited site in this occurrence."""

    site_id: str
    name: str
    district: str
    host: bool
    joined: bool = False  # seen at least once in this occurrence
    socket: str = "none"  # none | open | left | dropped: the last join/leave/drop event
    since: datetime | None = None
    hand: bool = False
    muted: bool = False
    removed: bool = False
    rehearsal: dict[str, Any] | None = None


@dataclass
class Round:
    """One rehearsal test in progress: what each site had published when it started, and the reports so far."""

    seconds: int
    before: dict[str, dict[str, int]]
    reports: dict[str, dict[str, int]] = field(default_factory=dict)
    all_in: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when every site asked to test has reported: the judge need not wait out its cap."""

    def __post_init__(self) -> None:
        if not self.before:  # nobody connected: nothing to wait for
            self.all_in.set()

    def report(self, site_id: str, report: dict[str, int]) -> None:
        self.reports[site_id] = report
        if self.reports.keys() >= self.before.keys():
            self.all_in.set()


@dataclass
class MeetingLive:
    """The live state of one meeting's current occurrence."""

    meeting_id: int
    occurrence_id: int | None
    start: datetime
    end: datetime
    host_site: str
    version: int
    sites: dict[str, SiteLive]
    state: str | None = None  # explicit state from start/rehearsal/stop events; None = by the clock
    floor: str | None = None
    round: Round | None = None
    stats: dict[str, dict[str, float | None]] = field(default_factory=dict)
    stats_at: float = 0.0
    counters: dict[str, tuple[float, int]] = field(default_factory=dict)  # site -> (monotonic, bytes) last sample

    @property
    def room(self) -> str:
        return str(self.meeting_id)

    def current_state(self, now: datetime) -> str:
        """idle → rehearsal → live → ended; without a start/stop, the clock decides (after the start it is live)."""
        if self.state == "ended" or now >= self.end:
            return "ended"
        if self.state == "live" or now >= self.start:
            return "live"
        return "rehearsal" if self.state == "rehearsal" else "idle"


def apply(ml: MeetingLive, action: str, site_id: str | None, detail: dict[str, Any], at: datetime) -> None:
    """Fold one event into the state: used for every new event and to rebuild the state from the stored ones."""
    site = ml.sites.get(site_id) if site_id else None
    if action == "start":
        ml.state = "live"
    elif action == "rehearsal":
        if ml.state != "live":  # a test during the meeting does not take it back to rehearsal
            ml.state = "rehearsal"
    elif action == "stop":
        ml.state, ml.floor = "ended", None
    elif action == "floor_granted" and site is not None:
        ml.floor = None if site.host else site.site_id
        site.hand = False
    elif action == "floor_revoked":
        ml.floor = None
    elif site is None:
        return
    elif action == "join":
        site.joined, site.socket, site.since = True, "open", at
    elif action in ("leave", "drop"):
        site.socket, site.since = ("left" if action == "leave" else "dropped"), at
    elif action in ("hand_raised", "hand_lowered"):
        site.hand = action == "hand_raised"
    elif action in ("mute", "unmute"):
        site.muted = action == "mute"
    elif action == "remove":
        site.removed, site.hand, site.since = True, False, at
        if ml.floor == site.site_id:
            ml.floor = None
    elif action == "rehearsal_result":
        site.rehearsal = dict(detail)


def current_occurrence(m: Meeting, now: datetime) -> Occurrence | None:
    """The occurrence live control is about: the running or next one (not cancelled), else the last one."""
    occs = [o for o in m.occurrences if svc.status_of(o, m) != "cancelled"]
    upcoming = [o for o in occs if o.end_at > now]
    if upcoming:
        return upcoming[0]
    return occs[-1] if occs else None


def _district(site: Site, parents: dict[str, Site]) -> str:
    if site.level == "commune" and site.parent_id in parents:
        return parents[site.parent_id].full_name
    return site.full_name if site.level == "district" else ""


def _iso(d: datetime | None) -> str | None:
    return to_local(d).isoformat() if d is not None else None


class LiveService:
    """Live state of every meeting this process serves; one per app (``get_live(app.state)``)."""

    def __init__(self, app_state: Any) -> None:
        self._app = app_state
        self._lock = threading.Lock()
        self._meetings: dict[int, MeetingLive] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    async def close(self) -> None:
        """Cancel pending rehearsal judgements (the app's shutdown); safe to call twice."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- plumbing ------------------------------------------------------------------------------------------------
    @property
    def sfu(self) -> Sfu:
        sfu: Sfu = self._app.sfu
        return sfu

    def _links(self) -> dict[tuple[str, str], SiteLink]:
        links: dict[tuple[str, str], SiteLink] = getattr(self._app, "signaling", {})
        return links

    def link(self, meeting_id: int, site_id: str) -> SiteLink | None:
        return self._links().get((str(meeting_id), site_id))

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- loading (worker threads) ----------------------------------------------------------------------------------
    def load(self, db: Session, m: Meeting, now: datetime | None = None) -> MeetingLive:
        """The meeting's live state for its current occurrence, rebuilt from the stored events when not in memory."""
        now = now or utcnow()
        occ = current_occurrence(m, now)
        occ_id = occ.id if occ is not None else None
        with self._lock:
            ml = self._meetings.get(m.id)
            if ml is not None and ml.occurrence_id == occ_id and ml.version == m.version:
                return ml
            sites = self._sites(db, m)
            if ml is not None and ml.occurrence_id == occ_id:  # the meeting was edited: keep the state, new sites
                for sid, s in sites.items():
                    old = ml.sites.get(sid)
                    if old is not None:
                        s.joined, s.socket, s.since, s.hand = old.joined, old.socket, old.since, old.hand
                        s.muted, s.removed, s.rehearsal = old.muted, old.removed, old.rehearsal
                ml.sites, ml.version = sites, m.version
                return ml
            ml = MeetingLive(m.id, occ_id, occ.start_at if occ else m.start_at, occ.end_at if occ else m.end_at,
                             m.host_site_id, m.version, sites)
            events = db.scalars(select(MeetingEvent)
                                .where(MeetingEvent.meeting_id == m.id, MeetingEvent.occurrence_id == occ_id)
                                .order_by(MeetingEvent.id)).all()
            for ev in events:
                apply(ml, ev.action, ev.site_id, ev.detail or {}, ev.at)
            if events:
                logger.info("meeting %s: live state rebuilt from %d event(s): %s, floor %s, muted %d, removed %d",
                            m.id, len(events), ml.current_state(now), ml.floor or "host",
                            sum(s.muted for s in sites.values()), sum(s.removed for s in sites.values()))
            self._meetings[m.id] = ml
            return ml

    @staticmethod
    def _sites(db: Session, m: Meeting) -> dict[str, SiteLive]:
        rows = {s.id: s for s in db.scalars(select(Site).where(Site.id.in_(m.site_ids))).all()}
        parents = {s.id: s for s in db.scalars(
            select(Site).where(Site.id.in_({r.parent_id for r in rows.values() if r.parent_id}))).all()}
        return {sid: SiteLive(sid, rows[sid].full_name if sid in rows else sid,
                              _district(rows[sid], parents) if sid in rows else "", sid == m.host_site_id)
                for sid in m.site_ids}

    def _persist(self, ml: MeetingLive, actor: str, action: str, site_id: str | None,
                 detail: dict[str, Any]) -> datetime:
        at = utcnow()
        with self._app.sessions() as db:
            db.add(MeetingEvent(meeting_id=ml.meeting_id, occurrence_id=ml.occurrence_id, at=at, actor=actor,
                                action=action, site_id=site_id, detail=detail))
            db.commit()
        return at

    def _get(self, meeting_id: int, user: User | None) -> MeetingLive:
        with self._app.sessions() as db:
            m = svc.get(db, meeting_id) if user is None else svc.get_for(db, user, meeting_id)
            ml = self.load(db, m)
            db.rollback()
            return ml

    async def meeting(self, meeting_id: int, user: User | None = None) -> MeetingLive:
        """The state (loaded in a worker thread); ``user`` must be allowed to see the meeting."""
        ml = self._meetings.get(meeting_id)
        if user is None and ml is not None and ml.end > utcnow():
            return ml
        ml = await run_in_threadpool(self._get, meeting_id, user)
        for s in ml.sites.values():  # after a restart the SFU knows nothing: tell it who is muted
            if s.muted:
                self.sfu.set_muted(ml.room, s.site_id, True)
        return ml

    async def record(self, ml: MeetingLive, actor: str, action: str, site_id: str | None = None,
                     detail: dict[str, Any] | None = None) -> None:
        """Write the event, then apply it (the one way the state changes) and log a plain line."""
        detail = detail or {}
        at = await run_in_threadpool(self._persist, ml, actor, action, site_id, detail)
        apply(ml, action, site_id, detail, at)
        logger.info("meeting %s: %s%s by %s%s", ml.meeting_id, action, f" site {site_id}" if site_id else "", actor,
                    f" {detail}" if detail else "")

    # -- the document --------------------------------------------------------------------------------------------
    def _site_state(self, ml: MeetingLive, s: SiteLive, now: datetime) -> tuple[str, datetime | None]:
        if s.removed:
            return "removed", s.since
        if self.link(ml.meeting_id, s.site_id) is not None:
            gone = self.sfu.dropped_for(ml.room, s.site_id)
            if gone is not None:  # socket still open, but the room went silent or its peer failed (a cut link)
                return "dropped", now - timedelta(seconds=gone)
            peer = self.sfu.link(ml.room, s.site_id)
            if peer is not None and peer["state"] == "connected" and peer["connected_at"] is not None:
                return "connected", now - timedelta(seconds=time.monotonic() - float(peer["connected_at"]))
            return "connecting", s.since
        if s.socket in ("dropped", "open"):  # "open" without a socket: the server restarted under it
            return "dropped", s.since
        return "invited", s.since

    def _stats(self, ml: MeetingLive) -> dict[str, dict[str, float | None]]:
        """RTT, loss and bitrate per connected site, sampled at most once a second whoever asks."""
        mono = time.monotonic()
        if mono - ml.stats_at < STATS_EVERY_S:
            return ml.stats
        out: dict[str, dict[str, float | None]] = {}
        for sid in ml.sites:
            peer = self.sfu.link(ml.room, sid)
            if peer is None:
                ml.counters.pop(sid, None)
                continue
            total = int(peer["bytes_sent"]) + int(peer["bytes_received"])
            previous = ml.counters.get(sid)
            ml.counters[sid] = (mono, total)
            kbps = None
            if previous is not None and mono > previous[0] and total >= previous[1]:
                kbps = round((total - previous[1]) * 8 / 1000 / (mono - previous[0]), 1)
            rtt = peer["rtt_ms"]
            connected = peer["state"] == "connected"
            out[sid] = {"rtt_ms": round(float(rtt), 1) if rtt is not None else None,
                        "loss_pct": round(float(peer["loss"]) * 100, 2) if connected else None,
                        "bitrate_kbps": kbps}
        ml.stats, ml.stats_at = out, mono
        return out

    def document(self, ml: MeetingLive, user: User | None = None) -> dict[str, Any]:
        """The ``GET …/live`` document (an operator sees only their own site's row)."""
        now = utcnow()
        stats = self._stats(ml)
        rows = []
        for s in ml.sites.values():
            if user is not None and user.role == UserRole.OPERATOR.value and s.site_id != user.site_id:
                continue
            state, since = self._site_state(ml, s, now)
            rows.append({"site": s.site_id, "name": s.name, "district": s.district, "state": state,
                         "since": _iso(since), "hand": s.hand, "muted": s.muted, "host": s.host,
                         "stats": stats.get(s.site_id, {"rtt_ms": None, "loss_pct": None, "bitrate_kbps": None}),
                         "rehearsal": s.rehearsal})
        rows.sort(key=lambda r: (not r["host"], r["district"], r["site"]))
        return {"meeting": ml.meeting_id, "occurrence": ml.occurrence_id, "state": ml.current_state(now),
                "floor": ml.floor, "host_site": ml.host_site, "start": _iso(ml.start), "end": _iso(ml.end),
                "sites": rows}

    def join_now(self, db: Session, m: Meeting, occurrence_id: int) -> bool:
        """For the agents' schedule: join at once (rehearsal or live), even before the scheduled start."""
        ml = self.load(db, m)
        return ml.occurrence_id == occurrence_id and ml.current_state(utcnow()) in ("rehearsal", "live")

    def refusal(self, meeting_id: int, site_id: str) -> str | None:
        """Why a site's socket may not join now: ``removed`` from this occurrence, or the meeting ``ended``."""
        ml = self._meetings.get(meeting_id)
        if ml is None:
            return None
        s = ml.sites.get(site_id)
        if s is not None and s.removed:
            return "removed"
        if ml.state == "ended" and ml.end > utcnow():
            return "ended"
        return None

    # -- actions (REST) ------------------------------------------------------------------------------------------
    @staticmethod
    def _site(ml: MeetingLive, site_id: str) -> SiteLive:
        s = ml.sites.get(site_id)
        if s is None:
            raise InvalidInput("Điểm cầu {site} không tham dự cuộc họp này", field="site", site=site_id)
        return s

    async def start(self, ml: MeetingLive, actor: str) -> None:
        await self.record(ml, actor, "start")

    async def stop(self, ml: MeetingLive, actor: str) -> None:
        """End the occurrence: every site gets ``ended`` (close code 4413) and its attendance span ends."""
        await self.record(ml, actor, "stop")
        with contextlib.suppress(MeetingError):
            self.sfu.revoke_floor(ml.room)
        for sid in ml.sites:
            link = self.link(ml.meeting_id, sid)
            if link is not None:
                link.end_reason = "meeting_ended"
                await link.refuse("ended")

    async def rehearsal(self, ml: MeetingLive, actor: str, seconds: int) -> None:
        """Every connected site publishes camera + microphone for ``seconds``; the SFU counts, nobody else sees it."""
        low, high = REHEARSAL_SECONDS
        if not low <= seconds <= high:
            raise InvalidInput("Thời gian chạy thử phải từ {low} đến {high} giây", field="seconds", low=low,
                               high=high)
        await self.record(ml, actor, "rehearsal", detail={"seconds": seconds})
        before: dict[str, dict[str, int]] = {}
        for sid in ml.sites:
            link = self.link(ml.meeting_id, sid)
            peer = self.sfu.link(ml.room, sid)
            if link is None or peer is None:
                continue
            before[sid] = dict(peer["published"])
            await link.session.notify({"type": "rehearsal", "seconds": seconds})
        ml.round = Round(seconds, before)
        self._spawn(self._judge(ml, ml.round))

    async def _judge(self, ml: MeetingLive, rnd: Round) -> None:
        """Count what arrived over the test (plus half a second in flight), then wait for the sites' reports
        (until all are in, at most ``REHEARSAL_REPORT_WAIT_S``).

        A site that publishes anyway (the hall, the floor holder) is rated over the whole window, the others over
        the N seconds they were asked to send."""
        t0 = time.monotonic()
        always = {sid for sid in rnd.before if ml.sites[sid].host or ml.floor == sid}
        await asyncio.sleep(rnd.seconds + REHEARSAL_TAIL_S)
        window = time.monotonic() - t0
        after: dict[str, dict[str, int]] = {}
        for sid in rnd.before:
            peer = self.sfu.link(ml.room, sid)
            after[sid] = dict(peer["published"]) if peer is not None else {}
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(rnd.all_in.wait(), REHEARSAL_REPORT_WAIT_S)
        for sid, before in rnd.before.items():
            span = window if sid in always else rnd.seconds
            fps = max(0, after[sid].get("video", 0) - before.get("video", 0)) / span
            pps = max(0, after[sid].get("audio", 0) - before.get("audio", 0)) / span
            got = rnd.reports.get(sid)
            received: bool | None = bool(got and got["video_frames"] > 0 and got["audio_packets"] > 0)
            if ml.sites[sid].host and ml.floor is None:
                received = None  # the hall speaks: it receives nobody, there is nothing to check
            result = {"video_ok": fps >= VIDEO_MIN_FPS, "audio_ok": pps >= AUDIO_MIN_PPS,
                      "video_fps": round(fps, 1), "audio_pps": round(pps, 1), "received_ok": received,
                      "received": got, "checked_at": _iso(utcnow())}
            try:
                await self.record(ml, "system", "rehearsal_result", sid, result)
            except Exception:
                logger.exception("meeting %s: cannot store the rehearsal result of site %s", ml.meeting_id, sid)
        if ml.round is rnd:
            ml.round = None

    async def grant(self, ml: MeetingLive, actor: str, site_id: str) -> None:
        s = self._site(ml, site_id)
        if s.removed or self.sfu.link(ml.room, site_id) is None:
            raise LiveError("Điểm cầu {site} chưa kết nối, chưa trao quyền phát biểu được", field="site",
                            site=site_id)
        had_hand = s.hand
        await self.record(ml, actor, "floor_granted", site_id)
        self.sfu.grant_floor(ml.room, site_id)
        if had_hand:
            await self._notify(ml, site_id, {"type": "hand", "raised": False})

    async def revoke(self, ml: MeetingLive, actor: str) -> None:
        await self.record(ml, actor, "floor_revoked", ml.floor)
        with contextlib.suppress(MeetingError):
            self.sfu.revoke_floor(ml.room)

    async def mute(self, ml: MeetingLive, actor: str, site_id: str | None, muted: bool) -> None:
        targets = [self._site(ml, site_id)] if site_id is not None else [s for s in ml.sites.values() if not s.host]
        for s in targets:
            if s.muted != muted:
                await self.record(ml, actor, "mute" if muted else "unmute", s.site_id)
            self.sfu.set_muted(ml.room, s.site_id, muted)
            await self._notify(ml, s.site_id, {"type": "mute", "muted": muted})

    async def remove(self, ml: MeetingLive, actor: str, site_id: str) -> None:
        """Out of this occurrence: ``removed`` + close code 4412; the site may not come back until the next one."""
        s = self._site(ml, site_id)
        if s.host:
            raise InvalidInput("Không thể mời điểm cầu chủ trì ra khỏi cuộc họp", field="site")
        had_floor = ml.floor == site_id
        await self.record(ml, actor, "remove", site_id)
        if had_floor:
            with contextlib.suppress(MeetingError):
                self.sfu.revoke_floor(ml.room)
        link = self.link(ml.meeting_id, site_id)
        if link is not None:
            link.end_reason = "removed"
            await link.refuse("removed")

    async def hand(self, ml: MeetingLive, actor: str, site_id: str, raised: bool) -> None:
        s = self._site(ml, site_id)
        if s.removed:
            raise LiveError("Điểm cầu {site} đã bị mời ra khỏi cuộc họp", field="site", site=site_id)
        if s.hand != raised:
            await self.record(ml, actor, "hand_raised" if raised else "hand_lowered", site_id)
        await self._notify(ml, site_id, {"type": "hand", "raised": raised})

    async def _notify(self, ml: MeetingLive, site_id: str, message: dict[str, Any]) -> None:
        link = self.link(ml.meeting_id, site_id)
        if link is not None:
            await link.session.notify(message)

    # -- the signaling socket's side (meeting.api.routes.ws) -----------------------------------------------------
    async def site_joined(self, meeting_id: int, site_id: str) -> None:
        ml = await self.meeting(meeting_id)
        if site_id in ml.sites:
            await self.record(ml, f"site:{site_id}", "join", site_id)

    async def site_left(self, meeting_id: int, site_id: str, reason: str) -> None:
        ml = await self.meeting(meeting_id)
        if site_id in ml.sites and reason in ("left", "dropped"):  # removed/ended are their own events already
            await self.record(ml, f"site:{site_id}", "leave" if reason == "left" else "drop", site_id)

    async def joined(self, session: SignalingSession) -> None:
        """The site's peer is in the room: push what the events say (mute, the floor it still holds)."""
        try:
            ml = await self.meeting(int(session.room_id))
        except Exception:  # the media must flow even when the state cannot be read: log, carry on unmuted
            logger.exception("meeting %s: live state not available for site %s", session.room_id, session.site_id)
            return
        s = ml.sites.get(session.site_id)
        if s is None:
            return
        if s.muted:
            self.sfu.set_muted(ml.room, s.site_id, True)
            await session.notify({"type": "mute", "muted": True})
        if ml.floor == s.site_id:
            self.sfu.grant_floor(ml.room, s.site_id)
            logger.info("meeting %s: site %s is back and holds the floor again", ml.meeting_id, s.site_id)
        if s.hand:
            await session.notify({"type": "hand", "raised": True})

    async def message(self, session: SignalingSession, message: dict[str, Any]) -> None:
        meeting_id = int(session.room_id)
        kind = message["type"]
        ml = await self.meeting(meeting_id)
        if kind == "hand":
            await self.hand(ml, f"site:{session.site_id}", session.site_id, bool(message["raised"]))
        elif kind == "rehearsal-report" and ml.round is not None and session.site_id in ml.round.before:
            try:
                report = {"video_frames": int(message["video_frames"]), "audio_packets": int(message["audio_packets"])}
            except (TypeError, ValueError):
                raise InvalidInput("rehearsal-report cần số nguyên video_frames và audio_packets",
                                   field="video_frames") from None
            ml.round.report(session.site_id, report)

    async def floor(self, session: SignalingSession, site: str | None) -> None:
        ml = await self.meeting(int(session.room_id))
        actor = f"site:{session.site_id}"
        if site is None or site == ml.host_site:
            await self.revoke(ml, actor)
        else:
            await self.grant(ml, actor, site)

    # -- events --------------------------------------------------------------------------------------------------
    def events(self, db: Session, user: User, meeting_id: int, limit: int = 200) -> list[dict[str, Any]]:
        """The meeting's events, newest first; an operator sees only those of their own site."""
        svc.get_for(db, user, meeting_id)
        stmt = select(MeetingEvent).where(MeetingEvent.meeting_id == meeting_id)
        if user.role == UserRole.OPERATOR.value:
            stmt = stmt.where(MeetingEvent.site_id == user.site_id)
        rows = db.scalars(stmt.order_by(MeetingEvent.id.desc()).limit(limit)).all()
        return [{"id": e.id, "at": _iso(e.at), "occurrence": e.occurrence_id, "actor": e.actor, "action": e.action,
                 "site": e.site_id, "detail": e.detail} for e in rows]

    def check_operator(self, user: User, site_id: str) -> None:
        """Operators act only for their own site (raise/lower its hand)."""
        if user.role == UserRole.OPERATOR.value and user.site_id != site_id:
            raise Forbidden("Bạn chỉ được thao tác cho điểm cầu của mình")


def get_live(app_state: Any) -> LiveService:
    """The app's live service, made on first use (the SFU and the socket registry are on the same app state)."""
    with _CREATE:
        live: LiveService | None = getattr(app_state, "live", None)
        if live is None:
            live = app_state.live = LiveService(app_state)
        return live


_CREATE = threading.Lock()


__all__ = ["ACTIONS", "SITE_STATES", "STATES", "LiveError", "LiveService", "MeetingLive", "apply",
           "current_occurrence", "get_live"]
