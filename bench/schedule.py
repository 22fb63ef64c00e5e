"""Scheduling benchmark: 10,000 meetings in a year for 140 sites, then meetings for 129 communes over HTTP.

Measures, against a real `meeting serve` (uvicorn on 127.0.0.1) on SQLite and on a throwaway PostgreSQL
cluster, the latency of:
  * create  — POST /api/v1/meetings for all 129 communes in a free slot (conflict check passes, 201);
  * clash   — the same in a busy slot (conflict check finds overlaps, 409 with the list);
  * check   — POST /api/v1/meetings/check (the form's dry run) at random times.
Goal (issue 8): p95 ≤ 50 ms. Results go to bench/results/schedule.json.

    .venv/bin/python bench/schedule.py [--meetings 10000] [--requests 200] [--db sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from conftool.inventory import load  # noqa: E402
from meeting import migrate  # noqa: E402
from meeting.db import make_engine, make_sessionmaker, session_scope  # noqa: E402
from meeting.models import Meeting, Occurrence, Participant  # noqa: E402
from meeting.services import auth, sites  # noqa: E402
from meeting.services.recurrence import TZ  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed(url: str, n_meetings: int, rng: random.Random) -> tuple[str, datetime]:
    """Sites from the reference inventory, one secretariat user, ``n_meetings`` in the next year (daytime)."""
    migrate.upgrade(url)
    engine = make_engine(url)
    base = (datetime.now(TZ) + timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)
    try:
        with session_scope(make_sessionmaker(engine)) as s:
            sites.sync(s, load(REPO / "inventory" / "dien-bien"))
            auth.create_user(s, "bench", "bench-password-123", "secretariat")
            token = auth.issue_api_token(s, "bench", "bench")
            ids = [x.id for x in sites.active_sites(s)]
            hosts = [x.id for x in sites.active_sites(s) if x.level in ("province", "district")]
        now = datetime.now(UTC)
        meetings, parts, occs = [], [], []
        for i in range(1, n_meetings + 1):
            day = base + timedelta(days=rng.randrange(365))
            start = day.replace(hour=rng.randrange(7, 17), minute=rng.choice((0, 15, 30, 45))).astimezone(UTC)
            end = start + timedelta(minutes=rng.choice((60, 90, 120)))
            host = rng.choice(hosts)
            chosen = {host, *rng.sample(ids, rng.randrange(1, 6))}
            meetings.append(
                {
                    "id": i,
                    "title": f"Họp {i}",
                    "agenda": "",
                    "start_at": start,
                    "end_at": end,
                    "rrule": None,
                    "host_site_id": host,
                    "selectors": sorted(chosen - {host}),
                    "status": "scheduled",
                    "reminder_minutes": None,
                    "created_by": "bench",
                    "created_at": now,
                    "updated_at": now,
                    "version": 1,
                }
            )
            parts.extend(
                {"meeting_id": i, "site_id": sid, "role": "host" if sid == host else "participant"}
                for sid in chosen
            )
            occs.append(
                {
                    "meeting_id": i,
                    "original_start": start,
                    "start_at": start,
                    "end_at": end,
                    "status": "scheduled",
                    "modified": False,
                }
            )
        with engine.begin() as conn:
            for table, rows in (
                (Meeting.__table__, meetings),
                (Participant.__table__, parts),
                (Occurrence.__table__, occs),
            ):
                for k in range(0, len(rows), 2000):
                    conn.execute(insert(table), rows[k : k + 2000])
            if engine.dialect.name == "postgresql":
                from sqlalchemy import text

                conn.execute(
                    text("SELECT setval(pg_get_serial_sequence('meeting_meetings', 'id'), :n)"),
                    {"n": n_meetings},
                )
                conn.execute(text("ANALYZE"))
    finally:
        engine.dispose()
    return token, base


def _pct(values: list[float], p: float) -> float:
    xs = sorted(values)
    return round(xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))], 2)


def _stats(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": _pct(values, 50),
        "p95_ms": _pct(values, 95),
        "max_ms": round(max(values), 2),
        "mean_ms": round(statistics.fmean(values), 2),
    }


def measure(
    url: str, token: str, base: datetime, n_requests: int, rng: random.Random, state: Path
) -> dict[str, Any]:
    port = _free_port()
    log = (state / "serve.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "meeting.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--db",
            url,
            "--no-reminders",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "LIENTHONG_STATE": str(state), "LIENTHONG_LOG": "WARNING"},
        cwd=REPO,
    )
    root = f"http://127.0.0.1:{port}"
    out: dict[str, Any] = {}
    try:
        for _ in range(300):
            try:
                if httpx.get(root + "/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise RuntimeError("meeting serve did not start: " + (state / "serve.log").read_text()[-2000:])
        h = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=root, headers=h, timeout=30) as c:

            def body(start: datetime, minutes: int, title: str) -> dict[str, Any]:
                end = start + timedelta(minutes=minutes)
                return {
                    "title": title,
                    "start": start.isoformat(),
                    "end": end.isoformat(),
                    "host_site": "11",
                    "participants": ["level:commune"],
                }

            for i in range(5):  # warm-up (connection, caches), not counted
                c.post("/api/v1/meetings/check", json=body(base + timedelta(days=i, hours=9), 60, "warm"))
            runs: dict[str, list[float]] = {"create": [], "clash": [], "check": []}
            codes: dict[str, dict[int, int]] = {k: {} for k in runs}
            days = rng.sample(range(365), min(n_requests, 365))
            for i in range(n_requests):
                kinds = [
                    (
                        "create",
                        "/api/v1/meetings",
                        body(
                            base + timedelta(days=days[i % len(days)], hours=19 + (i // len(days)) % 3),
                            50,
                            f"Giao ban tối {i}",
                        ),
                    ),
                    (
                        "clash",
                        "/api/v1/meetings",
                        body(
                            base + timedelta(days=rng.randrange(365), hours=rng.randrange(8, 16)),
                            120,
                            f"Trùng {i}",
                        ),
                    ),
                    (
                        "check",
                        "/api/v1/meetings/check",
                        body(
                            base + timedelta(days=rng.randrange(365), hours=rng.randrange(7, 20)),
                            90,
                            f"Thử {i}",
                        ),
                    ),
                ]
                for kind, path, b in kinds:
                    t0 = time.perf_counter()
                    r = c.post(path, json=b)
                    runs[kind].append((time.perf_counter() - t0) * 1000)
                    codes[kind][r.status_code] = codes[kind].get(r.status_code, 0) + 1
            for kind, vals in runs.items():
                out[kind] = {**_stats(vals), "status_codes": codes[kind]}
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--meetings", type=int, default=10_000)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--db", default="sqlite,postgresql")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "schedule.json")
    args = ap.parse_args()
    rng = random.Random(8)
    results: dict[str, Any] = {
        "benchmark": "schedule",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "existing_meetings": args.meetings,
        "sites": 140,
        "participants_per_new_meeting": 130,
        "requests_per_kind": args.requests,
        "goal_p95_ms": 50,
        "databases": {},
    }
    for dbname in args.db.split(","):
        with tempfile.TemporaryDirectory(prefix="lt-bench-") as tmp:
            state = Path(tmp)
            cluster = None
            if dbname == "postgresql":
                from tests.conftest import PgCluster

                cluster = PgCluster()
                cluster.start()
                url = cluster.create_database()
            else:
                url = f"sqlite:///{state / 'bench.db'}"
            try:
                t0 = time.perf_counter()
                token, base = seed(url, args.meetings, rng)
                seeded = round(time.perf_counter() - t0, 1)
                res = measure(url, token, base, args.requests, rng, state)
                res["seed_s"] = seeded
                res["goal_met"] = all(res[k]["p95_ms"] <= 50 for k in ("create", "clash", "check"))
                results["databases"][dbname] = res
                print(dbname, json.dumps(res, ensure_ascii=False))
            finally:
                if cluster is not None:
                    cluster.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
