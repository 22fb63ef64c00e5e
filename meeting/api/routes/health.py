"""Liveness/readiness of the service itself (for the systemd unit and load balancers)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import text

from meeting.api.deps import Public, SessionDep

router = APIRouter(prefix="/api/v1", tags=["health"])


@router.get("/health", dependencies=[Public])
def health(db: SessionDep) -> dict[str, Any]:
    db.execute(text("SELECT 1"))
    return {"status": "ok"}
