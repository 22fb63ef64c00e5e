"""Attendance (điểm danh) of a meeting: JSON for the console, CSV and XLSX downloads for the secretariat's report.

Everyone who may see the meeting may see its attendance; a site operator sees only their own site's row.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from meeting.api.deps import AnyUser, IdPath, LangDep, SessionDep
from meeting.services import attendance
from meeting.services import meetings as svc

router = APIRouter(prefix="/api/v1/meetings", tags=["attendance"])

OccurrenceQ = Annotated[int | None, Query(ge=1, le=2_147_483_647, description="occurrence id (default: the latest "
                                                                              "that has started)")]


def _report(db: Any, user: Any, meeting_id: int, occurrence: int | None) -> attendance.Report:
    return attendance.report_for(db, user, svc.get_for(db, user, meeting_id), occurrence)


def _file_name(rep: attendance.Report, ext: str) -> str:
    return f"diem-danh-hop-{rep.meeting_id}-{rep.start:%Y%m%d}.{ext}"


@router.get("/{meeting_id}/attendance")
def meeting_attendance(meeting_id: IdPath, user: AnyUser, db: SessionDep,
                       occurrence: OccurrenceQ = None) -> dict[str, Any]:
    """Per invited site: minutes present, first join, last leave, drops, gaps and link quality."""
    return _report(db, user, meeting_id, occurrence).as_dict()


@router.get("/{meeting_id}/attendance.csv", response_class=Response,
            responses={200: {"content": {"text/csv": {}}}})
def meeting_attendance_csv(meeting_id: IdPath, user: AnyUser, db: SessionDep, lang: LangDep,
                           occurrence: OccurrenceQ = None) -> Response:
    rep = _report(db, user, meeting_id, occurrence)
    return Response(attendance.to_csv(rep, lang), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{_file_name(rep, "csv")}"'})


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.get("/{meeting_id}/attendance.xlsx", response_class=Response, responses={200: {"content": {XLSX: {}}}})
def meeting_attendance_xlsx(meeting_id: IdPath, user: AnyUser, db: SessionDep, lang: LangDep,
                            occurrence: OccurrenceQ = None) -> Response:
    rep = _report(db, user, meeting_id, occurrence)
    return Response(attendance.to_xlsx(rep, lang), media_type=XLSX,
                    headers={"Content-Disposition": f'attachment; filename="{_file_name(rep, "xlsx")}"'})
