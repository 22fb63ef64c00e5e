"""The FastAPI application: migrations on start, routers, pages, offline API docs, middleware, reminders."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from meeting import migrate
from meeting.api import errors
from meeting.api.deps import Public
from meeting.api.middleware import AccessLog, BodyLimit
from meeting.api.routes import agents, health, meetings, sites, users, ws
from meeting.db import make_engine, make_sessionmaker, redact_url
from meeting.media.sfu import Sfu
from meeting.media.shards import ShardedSfu
from meeting.settings import Settings

logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent.parent / "web" / "static"
FAVICON = (
    "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E"
    "%3Crect width='16' height='16' rx='3' fill='%23b71c1c'/%3E%3C/svg%3E"
)


def _swagger_dir() -> Path | None:
    try:
        import swagger_ui_bundle  # type: ignore[import-untyped]
    except ImportError:
        return None
    return Path(swagger_ui_bundle.swagger_ui_path)


def create_app(settings: Settings, *, run_migrations: bool = True, reminders: bool = False) -> FastAPI:
    """Build the app for ``settings``; its lifespan migrates the DB and (optionally) runs reminders."""
    engine = make_engine(settings.db_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if run_migrations:
            migrate.upgrade(settings.db_url)
        scheduler = None
        if reminders:
            from meeting.services.reminders import ReminderScheduler

            scheduler = ReminderScheduler(app.state.sessions, settings)
            await scheduler.start()
        # explicit ICE servers only: meeting.media.sfu.rtc_configuration(); workers: meeting.media.shards
        sfu = app.state.sfu = ShardedSfu(settings.sfu_workers) if settings.sfu_workers > 0 else Sfu()
        await sfu.start()
        ws.prepare_media(app.state.sessions)
        logger.info("meeting service ready on %s", redact_url(settings.db_url))
        try:
            yield
        finally:
            live = getattr(app.state, "live", None)
            if live is not None:  # pending rehearsal checks must not outlive the SFU they read
                await live.close()
            await sfu.stop()
            if scheduler is not None:
                await scheduler.stop()
            engine.dispose()

    app = FastAPI(
        title="Liên Thông — Lịch họp trực tuyến / Meeting service",
        version="1.0",
        description="Lịch họp trực tuyến tỉnh – huyện – xã: điểm cầu, lịch, xung đột, sẵn sàng. "
        "Online meetings of the province: sites, schedule, conflicts, readiness.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = make_sessionmaker(engine)
    errors.install(app)
    for r in (health.router, users.router, sites.router, meetings.router, agents.router, ws.router, ws.ws_router):
        app.include_router(r)
    from meeting.api.routes import recordings, turn  # issue 11: recordings list/download, TURN credentials

    app.include_router(recordings.router)
    app.include_router(turn.router)
    from meeting.api.routes import attendance  # issue 11: attendance report, CSV/XLSX downloads

    app.include_router(attendance.router)
    from meeting.api.routes import live  # issue 11: live control (state, floor, mute, removal, rehearsal)

    app.include_router(live.router)
    from meeting.api.routes import wall  # issue 11: hall wall thumbnails
    from meeting.web import participant  # issue 11: browser /join page, kiosk URL, hall wall page

    app.include_router(wall.router)
    app.include_router(participant.router)
    participant.redact_access_log()

    from meeting.web import pages

    app.include_router(pages.router)
    swagger = _swagger_dir()
    if swagger is not None:  # mounted before /static, which would otherwise shadow it
        app.mount("/static/swagger", StaticFiles(directory=swagger), name="swagger")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/docs", include_in_schema=False, dependencies=[Public])
    def docs() -> HTMLResponse:
        """Swagger UI from local files (no CDN: the province network may have no Internet)."""
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=app.title,
            swagger_js_url="/static/swagger/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger/swagger-ui.css",
            swagger_favicon_url=FAVICON,
        )

    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(AccessLog)
    return app
