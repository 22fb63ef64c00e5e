"""Every label of the reports in Vietnamese (default) and English, in one table so both views stay in step."""

from __future__ import annotations

LABELS: dict[str, tuple[str, str]] = {
    "title": ("Báo cáo kiểm tra mạng", "Network audit report"),
    "run": ("Lần kiểm tra", "Audit run"),
    "generated": ("Lập lúc", "Generated"),
    "started": ("Bắt đầu", "Started"),
    "selector": ("Phạm vi", "Scope"),
    "all": ("toàn tỉnh", "whole province"),
    "kpi": ("Chỉ tiêu so với mục tiêu của tỉnh", "Indicators against the province's targets"),
    "target": ("Mục tiêu", "Target"),
    "lan": ("Mạng LAN", "LAN"),
    "internet": ("Internet", "Internet"),
    "dedicated": ("Mạng TSLCD", "TSLCD (dedicated)"),
    "meeting_ready": ("Sẵn sàng họp trực tuyến", "Meeting-ready"),
    "compliance": ("Tuân thủ cấu hình", "Compliance"),
    "drift": ("Thiết bị lệch cấu hình", "Devices with drift"),
    "sites": ("trạm", "sites"),
    "not_probed": ("chưa đo", "not probed"),
    "districts": ("Theo huyện", "By district"),
    "district": ("Huyện / đơn vị", "District / unit"),
    "audited": ("Số trạm", "Sites"),
    "failing": ("Trạm lỗi", "Failing sites"),
    "tree": ("Sơ đồ tỉnh", "Province tree"),
    "trend": ("Xu hướng qua các lần kiểm tra", "Trend over the last runs"),
    "failures": ("Các lỗi và cách khắc phục", "Failing checks and their fix"),
    "no_failures": ("Không có trạm nào lỗi.", "No failing site."),
    "site": ("Trạm", "Site"),
    "check": ("Kiểm tra", "Check"),
    "detail": ("Chi tiết", "Detail"),
    "fix": ("Cách khắc phục", "Fix"),
    "state_ok": ("Đạt", "OK"),
    "state_fail": ("Lỗi", "Failing"),
    "state_error": ("Không kiểm tra được", "Could not check"),
    "state_unknown": ("Chưa kiểm tra", "Not audited"),
    "legend": ("Chú giải", "Legend"),
    "switch": ("English", "Tiếng Việt"),
    "province": ("Tỉnh", "Province"),
    "availability": ("Độ khả dụng đường truyền", "Link availability"),
    "month": ("Tháng", "Month"),
    "group": ("Nhóm", "Group"),
    "links": ("Số đường", "Links"),
    "available": ("Khả dụng", "Available"),
    "quality": ("Đạt ngưỡng họp", "Within meeting thresholds"),
    "observed": ("Thời gian quan sát", "Observed time"),
    "runs": ("Số lần kiểm tra", "Runs"),
    "worst": ("Đường kém nhất", "Worst links"),
    "provider": ("Nhà mạng", "Telco"),
    "kind": ("Loại đường", "Link kind"),
    "none": ("không có", "none"),
}


def vi(key: str) -> str:
    return LABELS[key][0]


def en(key: str) -> str:
    return LABELS[key][1]
