#!/usr/bin/env bash
# The main job on the embedded default: the Điện Biên province as a running lab (140 FRR routers in network
# namespaces), its configs rendered and deployed over SSH, then audited, with an HTML report at the end.
# Take the lab down afterwards with: .venv/bin/conftool lab down
set -euo pipefail
cd "$(dirname "$0")/.."
# Always install first: a package installed by hand must not hide a missing install line.
bash scripts/install.sh
export PATH="$PWD/.venv/bin:$PATH"
PROFILE="${LIENTHONG_PROFILE:-full}"

echo "== 1. Danh mục / inventory"
conftool inventory validate
conftool inventory show | head -12

echo "== 2. Phòng lab / lab ($PROFILE)"
conftool lab down >/dev/null 2>&1 || true
conftool lab up --profile "$PROFILE"

echo "== 3. Triển khai cấu hình / deploy"
conftool deploy --apply || echo "(some devices failed: see the table above)"

echo "== 4. Kiểm tra mạng / audit"
# Right after 140 deploys the 2-core machine is still busy (backups committed, sessions closing); probes taken in
# that moment see false loss, so give it a moment as a NOC would between a change window and the next audit.
sleep 20
conftool audit run || echo "(some checks failed: see the summary above)"

echo "== 5. Báo cáo / report"
STATE="${LIENTHONG_STATE:-$HOME/.local/state/lienthong}"
mkdir -p "$STATE/reports"
conftool audit report --html "$STATE/reports/audit.html"
echo "Báo cáo / report: $STATE/reports/audit.html"
echo "Lab đang chạy / lab is running — tắt / take it down: .venv/bin/conftool lab down"
