"""Pages for browsers in the meeting itself: the participant page, the per-site kiosk URL and the hall wall.

Many commune room PCs run Windows with only a browser, so joining from Chromium is a first-class path. Tokens
never travel where a server log could keep them for long:

* ``/kiosk/{site_id}#t=<site token>`` is what a room PC gets (the secretariat sends it once): the site token sits
  in the URL **fragment**, which a browser never sends to any server; the page keeps it in ``localStorage``,
  removes it from the address bar, and trades it for short-lived join tokens itself.
* ``/join/{token}`` carries a **join token** (5 minutes by default, one meeting, one site) in its path for a
  one-off join. The path is redacted from the access log (:func:`redact_access_log`) and the page refuses
  expired tokens with a clear message; reconnecting after expiry needs a new link (or the kiosk URL).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from meeting.api.deps import IdPath, Public, Scheduler, SessionDep, SettingsDep, SitePath, request_lang
from meeting.errors import InvalidToken, MeetingError
from meeting.i18n import gettext_for, translate
from meeting.media import turn
from meeting.models import Meeting, MeetingStatus, Site
from meeting.services import auth
from meeting.services import meetings as svc
from meeting.settings import Settings

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

REDACTED_PREFIXES = ("/join/",)


class _RedactTokenPaths(logging.Filter):
    """Replace the token in ``/join/<token>`` with ``…`` in access-log records (path field and message)."""

    def filter(self, record: logging.LogRecord) -> bool:
        path = getattr(record, "path", None)
        if isinstance(path, str):
            for prefix in REDACTED_PREFIXES:
                if path.startswith(prefix):
                    record.path = prefix + "…"
        return True


def redact_access_log() -> None:
    """Install the redaction on the ``meeting.access`` logger once (called when the app is built)."""
    access = logging.getLogger("meeting.access")
    if not any(isinstance(f, _RedactTokenPaths) for f in access.filters):
        access.addFilter(_RedactTokenPaths())


def _render(request: Request, name: str, ctx: dict[str, Any], status: int = 200) -> HTMLResponse:
    lang = request_lang(request)
    base = {"_": gettext_for(lang), "lang": lang, "user": None, "csrf": "", "role_names": {}}
    return templates.TemplateResponse(request, name, {**base, **ctx}, status_code=status)


def _(msgid: str) -> str:
    """Marks a msgid for the catalog (gettext_noop): translated when the page is rendered, not here."""
    return msgid


def _config(doc: dict[str, Any]) -> str:
    """JSON for a ``<script type="application/json">`` block: ``<`` escaped so no value can close the tag."""
    return json.dumps(doc, ensure_ascii=False).replace("<", "\\u003c")


def _texts(lang: str) -> dict[str, str]:
    """The page's script messages in the page's language (the JS has no catalog of its own)."""
    return {key: translate(msgid, lang) for key, msgid in SCRIPT_TEXTS.items()}


SCRIPT_TEXTS: dict[str, str] = {
    "connecting": _("Đang kết nối…"),
    "connected": _("Đã kết nối"),
    "reconnecting": _("Mất kết nối, đang kết nối lại sau {s} giây…"),
    "floor_on": _("Điểm cầu đang được phát biểu: camera và micrô đang gửi đi"),
    "floor_off": _("Đang theo dõi điểm cầu chủ trì"),
    "muted": _("Chủ trì đã tắt micrô của điểm cầu"),
    "audio_only": _("Đường truyền yếu: tạm thời chỉ nhận âm thanh"),
    "removed": _("Điểm cầu đã bị mời ra khỏi cuộc họp"),
    "ended": _("Cuộc họp đã kết thúc"),
    "expired": _("Liên kết tham gia đã hết hạn: xin liên kết mới từ văn phòng"),
    "refused": _("Máy chủ từ chối kết nối (điểm cầu không được mời hoặc không có cuộc họp)"),
    "no_camera": _("Không mở được camera/micrô ({error}): chỉ xem và nghe"),
    "hand_up": _("Giơ tay phát biểu"),
    "hand_down": _("Hạ tay"),
    "hand_raised": _("Đã giơ tay, chờ chủ trì trao quyền phát biểu"),
    "click_audio": _("Bấm để bật âm thanh"),
    "waiting": _("Đang chờ cuộc họp tiếp theo"),
    "next_meeting": _("Cuộc họp tiếp theo: {title}, bắt đầu lúc {start}"),
    "no_meeting": _("Chưa có cuộc họp nào trong 7 ngày tới"),
    "no_token": _("Thiếu mã điểm cầu: mở liên kết kiosk đầy đủ (có #t=…) do văn phòng gửi"),
    "bad_token": _("Mã điểm cầu bị từ chối (đã thu hồi?): xin liên kết kiosk mới từ văn phòng"),
    "server_down": _("Không liên lạc được máy chủ, thử lại sau {s} giây"),
    "replaced": _("Điểm cầu đã kết nối từ một máy khác"),
}


def _ice_for(settings: Settings, identity: str) -> list[dict[str, Any]]:
    """Explicit ICE servers for the page: our coturn (time-limited credentials) or none — never a public STUN."""
    if not settings.turn_urls:
        return []
    try:
        creds = turn.make_credentials(turn.resolve_secret(settings.turn_secret_ref), identity, settings.turn_ttl_s)
    except MeetingError as exc:
        logger.warning("TURN credentials for %s unavailable: %s", identity, exc)
        return []
    return turn.ice_servers(settings.turn_urls, creds)


@router.get("/join/{token}", dependencies=[Public])
def join_page(token: str, request: Request, db: SessionDep, settings: SettingsDep) -> HTMLResponse:
    """The participant page for a join token (checked here too, so an old link says so at once)."""
    lang = request_lang(request)
    try:
        claims = auth.verify_join_token(auth.signing_key(db), token)
    except InvalidToken as exc:
        db.commit()  # signing_key may have created the key
        expired = "hết hạn" in exc.message
        msg = SCRIPT_TEXTS["expired"] if expired else "Mã tham gia không hợp lệ"
        return _render(request, "error.html", {"status": 410 if expired else 403,
                                               "message": translate(msg, lang)}, 410 if expired else 403)
    db.commit()
    m = db.get(Meeting, claims.meeting_id)
    site = db.get(Site, claims.site_id)
    if m is None or site is None or m.status == MeetingStatus.CANCELLED.value:
        return _render(request, "error.html", {"status": 404, "message": translate("Không có cuộc họp này", lang)},
                       404)
    config = {
        "meeting": m.id,
        "site": site.id,
        "ice_servers": _ice_for(settings, f"site:{site.id}"),
        "texts": _texts(lang),
    }
    return _render(request, "join.html", {"meeting": m, "site": site, "config": _config(config)})


@router.get("/kiosk/{site_id}", dependencies=[Public])
def kiosk_page(site_id: SitePath, request: Request, db: SessionDep) -> HTMLResponse:
    """The room PC's kiosk: waits for the site's next meeting and joins it at its start, by itself."""
    lang = request_lang(request)
    site = db.get(Site, site_id)
    if site is None:
        msg = translate("Không có điểm cầu {site}", lang).format(site=site_id)
        return _render(request, "error.html", {"status": 404, "message": msg}, 404)
    config = {"site": site.id, "texts": _texts(lang)}
    return _render(request, "kiosk.html", {"site": site, "config": _config(config)})


@router.get("/meetings/{meeting_id}/wall")
def wall_page(meeting_id: IdPath, request: Request, user: Scheduler, db: SessionDep) -> HTMLResponse:
    """The hall wall: a grid of every connected site's latest thumbnail, refreshed every second."""
    m = svc.get(db, meeting_id)
    lang = request_lang(request)
    config = {"meeting": m.id, "texts": {"empty": translate("Chưa có điểm cầu nào gửi ảnh", lang)}}
    return _render(request, "wall.html", {"meeting": m, "config": _config(config), "wall_user": user})
