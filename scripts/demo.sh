#!/usr/bin/env bash
# The main job on the embedded default: the Điện Biên province as a running lab (140 FRR routers in network
# namespaces), its configs rendered and deployed over SSH, then audited, with an HTML report — and at the end the
# meeting server running on the lab's province server, a demo meeting for all communes of one district with the
# lab's room agents joining it, and the URL of its host console.
#
#   bash scripts/demo.sh            # everything (install first)
#   bash scripts/demo.sh meeting    # only the meeting step, against the lab that is running now
#   bash scripts/demo.sh stop       # stop the demo's meeting server and agents (the lab stays up)
#
# Take the lab down afterwards with: .venv/bin/conftool lab down (it also ends anything left in its namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
PROFILE="${LIENTHONG_PROFILE:-full}"
STATE="${LIENTHONG_STATE:-$HOME/.local/state/lienthong}"
DEMO="$STATE/demo"

demo_stop() {
    # Only the processes this script started, by the PIDs it recorded (and only if they still run `meeting`).
    [ -d "$DEMO/pids" ] || return 0
    local f pid pids=() alive=()
    for f in "$DEMO"/pids/*.pid; do
        [ -e "$f" ] || continue
        pid="$(cat "$f")"
        if [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "meeting"; then
            kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
        fi
        rm -f "$f"
    done
    for _ in $(seq 1 50); do  # up to 10 s for a clean leave (the attendance span closes as "left")
        alive=()
        for pid in "${pids[@]}"; do [ -d "/proc/$pid" ] && alive+=("$pid"); done
        [ "${#alive[@]}" -eq 0 ] && break
        sleep 0.2
    done
    for pid in "${alive[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    echo "Đã dừng / stopped: ${#pids[@]} process(es) of the demo meeting"
}

demo_meeting() {
    # Fresh demo state each run: a database, the generated admin password and the tokens, all private to root.
    demo_stop >/dev/null
    rm -rf "$DEMO"
    mkdir -p -m 700 "$DEMO" "$DEMO/pids" "$DEMO/tokens" "$DEMO/logs"
    python - "$DEMO" <<'PY'
"""The demo's meeting step: server on the lab's province server host, a meeting for one district, its agents."""
import json
import os
import secrets
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx

from conftool.inventory import load
from meeting.services.recurrence import TZ

demo = Path(sys.argv[1])
env = dict(os.environ)
db = f"sqlite:///{demo / 'meeting.db'}"
inv = load(os.environ.get("LIENTHONG_INVENTORY", "inventory/dien-bien"))
status = subprocess.run(["conftool", "lab", "status", "--json"], capture_output=True, text=True, env=env)
nodes = json.loads(status.stdout or "{}").get("nodes", []) if status.returncode == 0 else []
hosts = [n for n in nodes if n.get("role") == "host"]
servers = [n for n in hosts if n.get("device_role") == "server"]
pcs = sorted((n for n in hosts if n.get("device_role") == "meeting-endpoint"), key=lambda n: n["site"])
if not servers or not pcs:
    sys.exit("Không có lab đang chạy / no running lab with a server host and room PCs: "
             "run `conftool lab up` (or the whole `bash scripts/demo.sh`) first")
srv = servers[0]


def district_of(site_id: str) -> str:
    d = inv.district_of(inv.get(site_id))
    return d.id if d else ""


district = os.environ.get("DEMO_DISTRICT") or district_of(pcs[0]["site"])
try:
    communes = [s.id for s in inv.children(district)]
except Exception:  # an unknown id: say which and what exists
    communes = []
if not communes:
    sys.exit(f"DEMO_DISTRICT={district}: không có xã nào / no communes; districts: "
             + ", ".join(d.id for d in inv.by_level("district")))
# Each commune's agent runs on its own room PC when the lab has one (full profile); otherwise on a room PC of the
# same district (the small profile has 2 PCs per district), as the agent lab test does.
own = {n["site"]: n["namespace"] for n in pcs}
local = [n["namespace"] for n in pcs if district_of(n["site"]) == district] or [n["namespace"] for n in pcs]
placement = {c: own.get(c) or local[i % len(local)] for i, c in enumerate(communes)}


def run(*args: str, stdin: str | None = None) -> str:
    cp = subprocess.run(["meeting", *args, "--db", db], input=stdin, capture_output=True, text=True, env=env)
    if cp.returncode != 0:
        sys.exit(f"meeting {args[0]} {args[1]}: {cp.stderr.strip() or cp.stdout.strip()}")
    return cp.stdout


run("db", "upgrade")
run("sites", "sync", "--inventory", str(inv.base_dir))
password = secrets.token_urlsafe(12)
pw_file = demo / "admin-password"
pw_file.touch(mode=0o600)
pw_file.write_text(password + "\n")
run("users", "add", "admin", "--role", "admin", "--password-stdin", stdin=password + "\n")
api_token = run("users", "token", "admin", "--name", "demo").strip()
host_site = inv.province.id
for sid in [host_site, *communes]:
    path = demo / "tokens" / f"token-{sid}"
    path.touch(mode=0o600)
    path.write_text(run("sites", "token", sid))


def spawn(name: str, ns: str, argv: list[str]) -> None:
    with (demo / "logs" / f"{name}.log").open("ab") as log:
        p = subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdout=log, stderr=log, env=env,
                             start_new_session=True)  # `ip netns exec` execs: this PID is the meeting process
    (demo / "pids" / f"{name}.pid").write_text(f"{p.pid}\n")


port = 8000
spawn("server", srv["namespace"], ["meeting", "serve", "--host", "0.0.0.0", "--port", str(port), "--db", db,
                                   "--no-reminders"])
console_base = f"http://{srv['mgmt_address']}:{port}"  # the NOC's path (the lab's management bridge)
agent_server = f"http://{inv.services.meeting_server}:{port}"  # the room PCs' path (over the deployed routers)
web = httpx.Client(trust_env=False)  # lab addresses only: never a proxy from the environment
deadline = time.monotonic() + 60
while True:
    try:
        if web.get(console_base + "/api/v1/health", timeout=2).status_code == 200:
            break
    except httpx.HTTPError:
        pass
    if time.monotonic() > deadline:
        sys.exit(f"meeting serve did not answer in 60 s: see {demo / 'logs' / 'server.log'}")
    time.sleep(0.5)

start = (datetime.now(TZ) + timedelta(seconds=40)).replace(microsecond=0)
d = inv.get(district)
body = {"title": f"Giao ban trực tuyến các xã {d.kind} {d.name} (demo)", "start": start.isoformat(),
        "end": (start + timedelta(hours=2)).isoformat(), "host_site": host_site,
        "participants": [f"district:{district}"]}
r = web.post(console_base + "/api/v1/meetings", json=body, timeout=30,
               headers={"Authorization": f"Bearer {api_token}"})
if r.status_code != 201:
    sys.exit(f"could not create the demo meeting: HTTP {r.status_code} {r.text[:500]}")
meeting_id = r.json()["id"]
print(f"Cuộc họp / meeting {meeting_id}: {body['title']}, {start:%H:%M:%S} – {len(communes)} xã / communes")

# The agents' control sockets (a room's "raise hand" command) live in the demo's directory, not the machine's /run.
run_dir = demo / "run"
run_dir.mkdir(mode=0o755)
agent_cfg = demo / "agent.yml"
agent_cfg.write_text(f"run_dir: {run_dir}\npoll_s: 5\n")
for sid, ns in [(host_site, srv["namespace"]), *placement.items()]:
    spawn(f"agent-{sid}", ns, ["meeting", "agent", "--site", sid, "--server", agent_server, "--config", str(agent_cfg),
          "--token-file", str(demo / "tokens" / f"token-{sid}"), "--json"])


def connected(sid: str) -> bool:
    try:
        text = (demo / "logs" / f"agent-{sid}.log").read_text()
    except OSError:
        return False
    return any(line.startswith("{") and '"event": "connected"' in line for line in text.splitlines())


deadline = time.monotonic() + 40 + 60
while time.monotonic() < deadline and not all(connected(s) for s in communes):
    time.sleep(1)
joined = [s for s in communes if connected(s)]
print(f"Đã vào họp / joined: {len(joined)}/{len(communes)} xã / communes"
      + ("" if len(joined) == len(communes) else
         f" (missing: {', '.join(s for s in communes if s not in joined)}; logs in {demo / 'logs'})"))
print(f"Điều hành / host console: {console_base}/meetings/{meeting_id}/console")
print(f"Đăng nhập / log in: admin, mật khẩu / password in {pw_file} (root only: cat it yourself)")
print(f"Giơ tay / raise a hand: python -m meeting.agent.control hand --site {communes[0]} --run-dir {run_dir}")
PY
    echo "Dừng / stop: bash scripts/demo.sh stop (server + agents), .venv/bin/conftool lab down (the lab)"
}

case "${1:-all}" in
    stop) demo_stop; exit 0 ;;
    meeting) demo_meeting; exit 0 ;;
    all) ;;
    *) echo "usage: bash scripts/demo.sh [all|meeting|stop]" >&2; exit 2 ;;
esac

# Always install first: a package installed by hand must not hide a missing install line.
bash scripts/install.sh

echo "== 1. Danh mục / inventory"
conftool inventory validate
conftool inventory show | head -12

echo "== 2. Phòng lab / lab ($PROFILE)"
demo_stop >/dev/null  # a previous demo's server and agents live in the lab's namespaces
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
mkdir -p "$STATE/reports"
conftool audit report --html "$STATE/reports/audit.html"
echo "Báo cáo / report: $STATE/reports/audit.html"

echo "== 6. Họp trực tuyến / meeting"
demo_meeting
echo "Lab đang chạy / lab is running — tắt / take it down: .venv/bin/conftool lab down"
