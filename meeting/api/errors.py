"""Errors → HTTP: one JSON shape for the API (VI and EN text), a redirect or HTML for the pages."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from meeting.errors import AuthError, Conflict, MeetingError
from meeting.i18n import translate
from meeting.services.meetings import SchemaInvalid

logger = logging.getLogger(__name__)

# pydantic's own error types → Vietnamese msgid (English comes from the catalog).
BUILTIN: dict[str, str] = {
    "missing": "Thiếu trường bắt buộc",
    "string_too_long": "Quá dài: tối đa {max_length} ký tự",
    "string_too_short": "Không được để trống",
    "too_short": "Cần ít nhất {min_length} phần tử",
    "too_long": "Quá nhiều phần tử: tối đa {max_length}",
    "string_type": "Phải là chuỗi ký tự",
    "string_pattern_mismatch": "Sai định dạng",
    "int_parsing": "Phải là số nguyên",
    "int_type": "Phải là số nguyên",
    "int_from_float": "Phải là số nguyên",
    "bool_parsing": "Phải là true hoặc false",
    "bool_type": "Phải là true hoặc false",
    "datetime_parsing": "Thời gian không hợp lệ (dùng ISO 8601, ví dụ 2030-01-07T08:00)",
    "datetime_from_date_parsing": "Thời gian không hợp lệ (dùng ISO 8601, ví dụ 2030-01-07T08:00)",
    "datetime_type": "Thời gian không hợp lệ (dùng ISO 8601, ví dụ 2030-01-07T08:00)",
    "greater_than_equal": "Phải lớn hơn hoặc bằng {ge}",
    "less_than_equal": "Phải nhỏ hơn hoặc bằng {le}",
    "greater_than": "Phải lớn hơn {gt}",
    "less_than": "Phải nhỏ hơn {lt}",
    "extra_forbidden": "Trường không được phép",
    "json_invalid": "JSON không hợp lệ",
    "model_attributes_type": "Phải là một đối tượng JSON",
    "dict_type": "Phải là một đối tượng JSON",
    "list_type": "Phải là một danh sách",
    "literal_error": "Giá trị không được phép",
    "enum": "Giá trị không được phép",
    "value_error": "Giá trị không hợp lệ",
    "body_too_large": "Nội dung yêu cầu quá lớn (tối đa {limit} byte)",
}


def _fmt(msgid: str, lang: str, params: dict[str, Any]) -> str:
    try:
        return translate(msgid, lang).format(**params)
    except (KeyError, IndexError, ValueError):
        return translate(msgid, lang)


def _item(
    loc: Any, kind: str, msgid: str | None, params: dict[str, Any], fallback: str, lang: str
) -> dict[str, Any]:
    if msgid is None:
        vi = en = fallback
    else:
        vi, en = _fmt(msgid, "vi", params), _fmt(msgid, "en", params)
    return {"loc": list(loc), "type": kind, "msg": en if lang == "en" else vi, "msg_vi": vi, "msg_en": en}


def validation_items(errors: Any, lang: str) -> list[dict[str, Any]]:
    out = []
    for e in errors:
        ctx = {k: v for k, v in (e.get("ctx") or {}).items() if isinstance(v, str | int | float)}
        msgid = ctx.pop("msgid", None) if isinstance(ctx.get("msgid"), str) else None
        if msgid is None:
            msgid = BUILTIN.get(e.get("type", ""))
        out.append(
            _item(
                e.get("loc", ()),
                e.get("type", "value_error"),
                msgid if isinstance(msgid, str) else None,
                ctx,
                str(e.get("msg", "")),
                lang,
            )
        )
    return out


def _lang(request: Request) -> str:
    from meeting.api.deps import request_lang

    return request_lang(request)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return JSONResponse(
            status_code=422,
            content=jsonable_encoder({"detail": validation_items(exc.errors(), _lang(request))}),
        )

    @app.exception_handler(ValidationError)
    async def _pyd_validation(request: Request, exc: ValidationError) -> Response:
        return JSONResponse(
            status_code=422,
            content=jsonable_encoder({"detail": validation_items(exc.errors(), _lang(request))}),
        )

    @app.exception_handler(MeetingError)
    async def _meeting(request: Request, exc: MeetingError) -> Response:
        lang = _lang(request)
        if isinstance(exc, SchemaInvalid):
            return JSONResponse(
                status_code=422,
                content=jsonable_encoder({"detail": validation_items(exc.validation.errors(), lang)}),
            )
        if isinstance(exc, AuthError) and not _is_api(request):
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        loc = ["body", exc.field] if exc.field else []
        body: dict[str, Any] = {
            "detail": [_item(loc, type(exc).__name__, exc.message, exc.params, str(exc), lang)]
        }
        if isinstance(exc, Conflict):
            body["conflicts"] = exc.conflicts[:200]
            body["total_conflicts"] = len(exc.conflicts)
        headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else None
        if not _is_api(request):
            from meeting.web.pages import error_page

            return error_page(request, exc.http_status, body["detail"][0]["msg"])
        return JSONResponse(status_code=exc.http_status, content=jsonable_encoder(body), headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if not _is_api(request) and exc.status_code == 404:
            from meeting.web.pages import error_page

            return error_page(request, 404, translate("Không tìm thấy trang", _lang(request)))
        return JSONResponse(
            status_code=exc.status_code, content={"detail": exc.detail}, headers=getattr(exc, "headers", None)
        )
