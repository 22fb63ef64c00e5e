"""The secretariat's and the site operators' pages: login, list, create/edit with site tree, meeting, site."""

from __future__ import annotations

import logging
import secrets
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy.orm import Session as OrmSession

from meeting.api.convert import occurrence_out
from meeting.api.deps import (
    LANG_COOKIE,
    SESSION_COOKIE,
    AnyUser,
    IdPath,
    PrincipalDep,
    Public,
    Scheduler,
    SessionDep,
    SettingsDep,
    request_lang,
)
from meeting.api.errors import validation_items
from meeting.api.routes.recordings import recording_out
from meeting.errors import AuthError, Conflict, Forbidden, InvalidInput, RateLimited
from meeting.i18n import gettext_for, normalize_lang, translate
from meeting.models import Meeting, Site, User, UserRole
from meeting.schemas import MeetingIn
from meeting.services import attendance, auth, readiness, recordings, sites
from meeting.services import meetings as svc
from meeting.services.meetings import SchemaInvalid
from meeting.services.recurrence import TZ, to_local

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
LOGIN_CSRF_COOKIE = "lt_login_csrf"
ROLE_NAMES = {
    "admin": "Quản trị",
    "secretariat": "Văn phòng",
    "engineer": "Kỹ thuật",
    "operator": "Vận hành điểm cầu",
}


def render(
    request: Request, name: str, ctx: dict[str, Any], status: int = 200, principal: Any = None
) -> HTMLResponse:
    lang = request_lang(request)
    base = {
        "_": gettext_for(lang),
        "lang": lang,
        "role_names": ROLE_NAMES,
        "user": principal.user if principal else None,
        "csrf": principal.csrf_token if principal else "",
    }
    return templates.TemplateResponse(request, name, {**base, **ctx}, status_code=status)


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    return render(request, "error.html", {"status": status, "message": message}, status)


def _safe_next(value: str | None) -> str:
    return value if value and value.startswith("/") and not value.startswith("//") else "/"


# ----- language, login, logout ----------------------------------------------------------------------
@router.get("/lang/{code}", dependencies=[Public])
def set_lang(code: str, next: str = "/") -> Response:
    resp = RedirectResponse(_safe_next(next), status_code=303)
    resp.set_cookie(LANG_COOKIE, normalize_lang(code), max_age=365 * 86400, samesite="lax", httponly=True)
    return resp


@router.get("/login", dependencies=[Public])
def login_form(request: Request, next: str = "/") -> Response:
    token = secrets.token_urlsafe(24)
    resp = render(
        request, "login.html", {"login_csrf": token, "next": _safe_next(next), "error": None, "username": ""}
    )
    resp.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.app.state.settings.secure_cookies,
    )
    return resp


@router.post("/login", dependencies=[Public])
def login(
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    lang = request_lang(request)
    cookie_token = request.cookies.get(LOGIN_CSRF_COOKIE)
    status, error = 200, None
    if not cookie_token or not secrets.compare_digest(cookie_token, csrf_token):
        status, error = 403, translate("Phiên làm việc không hợp lệ (CSRF), hãy tải lại trang", lang)
    else:
        client = request.client.host if request.client else "-"
        try:
            user = auth.authenticate(db, settings, username, password, client)
        except RateLimited as exc:
            status, error = 429, exc.render(lang)
        except AuthError as exc:
            status, error = 401, exc.render(lang)
        else:
            new = auth.start_session(db, settings, user)
            db.commit()
            logger.info("user %s logged in", user.username)
            resp = RedirectResponse(_safe_next(next), status_code=303)
            resp.set_cookie(
                SESSION_COOKIE,
                new.cookie,
                httponly=True,
                samesite="lax",
                secure=settings.secure_cookies,
                max_age=int(settings.session_hours * 3600),
            )
            resp.delete_cookie(LOGIN_CSRF_COOKIE)
            return resp
    token = secrets.token_urlsafe(24)
    page = render(
        request,
        "login.html",
        {"login_csrf": token, "next": _safe_next(next), "error": error, "username": username},
        status,
    )
    page.set_cookie(
        LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=settings.secure_cookies
    )
    return page


@router.post("/logout")
def logout(request: Request, user: AnyUser, db: SessionDep) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        auth.end_session(db, cookie)
        db.commit()
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(SESSION_COOKIE)
    return resp


# ----- list --------------------------------------------------------------------------------------
def _parse_day(value: str | None, default: date) -> date:
    try:
        return date.fromisoformat(value) if value else default
    except ValueError:
        return default


@router.get("/")
def index(
    request: Request,
    user: AnyUser,
    principal: PrincipalDep,
    db: SessionDep,
    start: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    end: Annotated[str | None, Query(alias="to", max_length=10)] = None,
) -> Response:
    if user.role == UserRole.OPERATOR.value:
        return RedirectResponse("/site", status_code=303)
    today = datetime.now(TZ).date()
    d0 = _parse_day(start, today)
    d1 = _parse_day(end, d0 + timedelta(days=60))
    lo = datetime.combine(d0, time(0), TZ)
    hi = datetime.combine(max(d1, d0), time(0), TZ) + timedelta(days=1)
    rows = [occurrence_out(o, m) for o, m in svc.occurrences_between(db, lo, hi)]
    days: dict[str, list[Any]] = {}
    for r in rows:
        days.setdefault(r.start.strftime("%d/%m/%Y"), []).append(r)
    names = sites.names(db, {r.host_site for r in rows})
    return render(
        request,
        "list.html",
        {"days": list(days.items()), "names": names, "day_from": d0.isoformat(), "day_to": d1.isoformat()},
        principal=principal,
    )


# ----- create / edit -------------------------------------------------------------------------------
def _form_defaults() -> dict[str, Any]:
    tomorrow = datetime.now(TZ).date() + timedelta(days=1)
    return {
        "title": "",
        "agenda": "",
        "date": tomorrow.isoformat(),
        "start_time": "08:00",
        "end_time": "10:00",
        "host_site": "",
        "rrule": "",
        "reminder_minutes": "",
        "participants": [],
    }


def _form_from_meeting(m: Meeting) -> dict[str, Any]:
    s, e = to_local(m.start_at), to_local(m.end_at)
    return {
        "title": m.title,
        "agenda": m.agenda,
        "date": s.date().isoformat(),
        "start_time": s.strftime("%H:%M"),
        "end_time": e.strftime("%H:%M"),
        "host_site": m.host_site_id,
        "rrule": m.rrule or "",
        "reminder_minutes": "" if m.reminder_minutes is None else str(m.reminder_minutes),
        "participants": m.selectors or m.site_ids,
    }


def _render_form(
    request: Request,
    db: Any,
    principal: Any,
    form: dict[str, Any],
    *,
    heading: str,
    action: str,
    errors: list[str] | None = None,
    conflicts: list[dict[str, Any]] | None = None,
    conflict_message: str = "",
    status: int = 200,
) -> HTMLResponse:
    all_sites = sites.active_sites(db)
    hosts = sorted((s for s in all_sites if s.level in ("province", "district")), key=lambda s: s.id)
    hosts += [s for s in all_sites if s.level == "commune"]
    return render(
        request,
        "form.html",
        {
            "form": form,
            "heading": heading,
            "action": action,
            "errors": errors or [],
            "conflicts": conflicts or [],
            "conflict_message": conflict_message,
            "tree": sites.tree(db),
            "hosts": hosts,
            "n_communes": sum(1 for s in all_sites if s.level == "commune"),
        },
        status,
        principal,
    )


def _form_to_input(form: dict[str, Any]) -> dict[str, Any]:
    def when(t: str) -> str:
        return f"{form['date']}T{t}"

    data: dict[str, Any] = {
        "title": form["title"],
        "agenda": form["agenda"],
        "start": when(form["start_time"]),
        "end": when(form["end_time"]),
        "host_site": form["host_site"],
        "participants": form["participants"],
        "rrule": form["rrule"] or None,
        "reminder_minutes": form["reminder_minutes"] or None,
    }
    return data


async def _read_form(request: Request) -> dict[str, Any]:
    raw = await request.form()
    form = _form_defaults()
    for key in (
        "title",
        "agenda",
        "date",
        "start_time",
        "end_time",
        "host_site",
        "rrule",
        "reminder_minutes",
    ):
        v = raw.get(key)
        form[key] = v.strip() if isinstance(v, str) else ""
    form["participants"] = [v for v in raw.getlist("participants") if isinstance(v, str)]
    return form


def _labels(items: list[dict[str, Any]], lang: str) -> list[str]:
    names = {
        "title": "Tiêu đề",
        "start": "Giờ bắt đầu",
        "end": "Giờ kết thúc",
        "host_site": "Điểm cầu chủ trì",
        "participants": "Điểm cầu tham dự",
        "rrule": "Lặp lại",
        "reminder_minutes": "Nhắc trước (phút)",
        "agenda": "Nội dung / chương trình",
    }
    out = []
    for it in items:
        field = next((str(x) for x in it["loc"] if str(x) in names), None)
        prefix = translate(names[field], lang) + ": " if field else ""
        out.append(prefix + it["msg"])
    return out


async def _save(
    request: Request, db: Any, settings: Any, principal: Any, user: User, meeting_id: int | None
) -> Response:
    lang = request_lang(request)
    form = await _read_form(request)
    heading = translate("Sửa cuộc họp" if meeting_id else "Tạo cuộc họp", lang)
    action = f"/meetings/{meeting_id}/edit" if meeting_id else "/meetings/new"
    try:
        if meeting_id is None:
            data = MeetingIn.model_validate(
                _form_to_input(form), context={"past_grace_s": settings.past_grace_s}
            )
            m = svc.create(db, settings, data, user.username)
        else:
            from meeting.schemas import MeetingPatch

            m = svc.update(
                db, settings, meeting_id, MeetingPatch.model_validate(_form_to_input(form)), user.username
            )
        db.commit()
    except (ValidationError, SchemaInvalid) as exc:
        db.rollback()
        errs = exc.validation.errors() if isinstance(exc, SchemaInvalid) else exc.errors()
        return _render_form(
            request,
            db,
            principal,
            form,
            heading=heading,
            action=action,
            errors=_labels(validation_items(errs, lang), lang),
            status=422,
        )
    except Conflict as exc:
        db.rollback()
        return _render_form(
            request,
            db,
            principal,
            form,
            heading=heading,
            action=action,
            conflicts=[
                {**c, "start": to_local(c["start"]), "end": to_local(c["end"])} for c in exc.conflicts
            ],
            conflict_message=exc.render(lang),
            status=409,
        )
    except InvalidInput as exc:
        db.rollback()
        return _render_form(
            request,
            db,
            principal,
            form,
            heading=heading,
            action=action,
            errors=[exc.render(lang)],
            status=422,
        )
    return RedirectResponse(f"/meetings/{m.id}", status_code=303)


@router.get("/meetings/new")
def new_form(request: Request, user: Scheduler, principal: PrincipalDep, db: SessionDep) -> Response:
    form = _form_defaults()
    province = next((s for s in sites.active_sites(db) if s.level == "province"), None)
    form["host_site"] = province.id if province else ""
    return _render_form(
        request,
        db,
        principal,
        form,
        heading=translate("Tạo cuộc họp", request_lang(request)),
        action="/meetings/new",
    )


@router.post("/meetings/new")
async def create(
    request: Request, user: Scheduler, principal: PrincipalDep, db: SessionDep, settings: SettingsDep
) -> Response:
    return await _save(request, db, settings, principal, user, None)


@router.get("/meetings/{meeting_id}/edit")
def edit_form(
    meeting_id: IdPath, request: Request, user: Scheduler, principal: PrincipalDep, db: SessionDep
) -> Response:
    m = svc.get(db, meeting_id)
    return _render_form(
        request,
        db,
        principal,
        _form_from_meeting(m),
        heading=translate("Sửa cuộc họp", request_lang(request)),
        action=f"/meetings/{meeting_id}/edit",
    )


@router.post("/meetings/{meeting_id}/edit")
async def edit(
    meeting_id: IdPath,
    request: Request,
    user: Scheduler,
    principal: PrincipalDep,
    db: SessionDep,
    settings: SettingsDep,
) -> Response:
    svc.get(db, meeting_id)
    return await _save(request, db, settings, principal, user, meeting_id)


@router.post("/meetings/{meeting_id}/cancel")
def cancel(meeting_id: IdPath, user: Scheduler, db: SessionDep) -> Response:
    svc.cancel(db, meeting_id, user.username)
    db.commit()
    return RedirectResponse(f"/meetings/{meeting_id}", status_code=303)


# ----- meeting and site pages ------------------------------------------------------------------------
def _attendance_for(db: OrmSession, user: User, m: Meeting) -> dict[str, Any] | None:
    """The attendance of the meeting's latest started occurrence (None before anyone joined)."""
    rep = attendance.report_for(db, user, m)
    if not any(x.first_join for x in rep.sites):
        return None
    return {"present": rep.present, "invited": len(rep.sites),
            "sites": [x.as_dict() | {"first": to_local(x.first_join) if x.first_join else None} for x in rep.sites]}


@router.get("/meetings/{meeting_id}")
def meeting_page(
    meeting_id: IdPath,
    request: Request,
    user: AnyUser,
    principal: PrincipalDep,
    db: SessionDep,
    settings: SettingsDep,
) -> Response:
    m = svc.get_for(db, user, meeting_id)
    ready = readiness.for_meeting(db, settings, m)
    occs = [occurrence_out(o, m) for o in m.occurrences]
    return render(
        request,
        "meeting.html",
        {
            "m": m,
            "start": to_local(m.start_at),
            "end": to_local(m.end_at),
            "readiness": ready,
            "names": sites.names(db, [m.host_site_id]),
            "occurrences": occs,
            "can_edit": user.role in (UserRole.ADMIN.value, UserRole.SECRETARIAT.value),
            "recordings": [recording_out(r) for r in recordings.for_meeting(db, m.id)],
            "attendance": _attendance_for(db, user, m),
        },
        principal=principal,
    )


@router.get("/meetings/{meeting_id}/console")
def console_page(
    meeting_id: IdPath, request: Request, user: Scheduler, principal: PrincipalDep, db: SessionDep
) -> Response:
    """The host console (admin/secretariat; an operator gets the 403 page). Only a shell: console.js polls
    ``GET /api/v1/meetings/{id}/live`` every second, so the page never shows state older than a second."""
    m = svc.get(db, meeting_id)
    return render(
        request,
        "console.html",
        {
            "m": m,
            "start": to_local(m.start_at),
            "end": to_local(m.end_at),
            "names": sites.names(db, [m.host_site_id]),
        },
        principal=principal,
    )


@router.get("/site")
def site_page(
    request: Request,
    user: AnyUser,
    principal: PrincipalDep,
    db: SessionDep,
    settings: SettingsDep,
    site: Annotated[str | None, Query(max_length=8)] = None,
    q: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    """The site operator's page: their room's upcoming meetings, heartbeat and readiness."""
    if user.role == UserRole.OPERATOR.value:
        if site is not None and site != user.site_id:
            raise Forbidden("Bạn không có quyền xem lịch của điểm cầu này")
        site = user.site_id
    if site is None:
        return render(
            request,
            "site.html",
            {"site": None, "q": q, "found": sites.search(db, q, 200)},
            principal=principal,
        )
    s: Site = sites.get_site(db, site, allow_archived=True)
    now = datetime.now(TZ)
    rows = [
        occurrence_out(o, m)
        for o, m in svc.occurrences_between(
            db, now - timedelta(hours=12), now + timedelta(days=31), site_id=s.id
        )
    ]
    ready = readiness.for_sites(db, settings, [s.id]).sites[0]
    return render(
        request,
        "site.html",
        {
            "site": s,
            "rows": rows,
            "ready": ready,
            "hb_age": ready.heartbeat_age_s,
            "online_s": settings.heartbeat_online_s,
        },
        principal=principal,
    )
