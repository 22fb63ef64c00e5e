"""Benchmark: 129 commune room agents start at a meeting's start time; how long until 129/129 are in and receiving?

Runs inside a network namespace it creates (``lt-agents-bench-<pid>``: ``lo`` and a veth end with 10.99.0.1/24)
and removes afterwards, also on failure; no lab is needed (the lab test in tests/agent covers routing through the
province's routers; this measures the agents and the server at full scale).

* ``meeting serve`` (its own process, SQLite in a temp dir, the reference inventory's sites); once every agent
  runs (first heartbeat done), one meeting "host hall 11 + all 129 communes" is scheduled to start ``--lead``
  seconds later (the agents read their schedule every 5 s here);
* the host hall: one ``meeting agent`` process publishing its test source (really VP8-encoded, 320×180 @ 15 fps);
* the communes: 128 agents as real :class:`meeting.agent.runner.Agent` objects, ``--per-process`` of them in one
  process (the agent code is the same as ``meeting agent``; only the process is shared, to fit the load generator
  on this machine), plus one commune as its own ``meeting agent`` process — the deployed shape, one per room PC,
  whose CPU and RSS are the "per agent as deployed" figures. Sinks are ``null`` (encoded frames counted, not
  decoded: nobody watches a load test).
* From the meeting's start: time until each commune is ICE+DTLS connected and until it has received video (a
  keyframe onwards) and audio; time to 129/129 of each. Then a steady window: CPU-s/s and RSS of the server, of
  the shared agent processes (per agent) and of the single-agent process.

``--sfu-workers K`` starts the server with ``LIENTHONG_SFU_WORKERS=K`` (the room agents' peers on K SFU worker
processes, meeting.media.shards); their CPU and RSS are reported apart from the server's.

Agent processes (the load generator, host hall included) run at nice 10 and the server at 0, as in bench/sfu.py.
The 1-minute load average of the machine is recorded with each run: other work on this shared 2-core machine
changes the figures a lot. Writes ``bench/results/agents.json`` (``--out``, ``--append``). Needs root.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

ADDR = "10.99.0.1"
POLL_S = 5.0
"""The agents read their schedule every 5 s here (30 s by default), so a meeting created for the run is seen."""
GENERATOR_NICE = 10
"""Agent processes run at nice 10, the server at 0 (as bench/sfu.py does with its load generator)."""
PORT = 8000
HOST = "11"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def _proc_stat(pid: int) -> tuple[float, int]:
    """(CPU seconds, RSS bytes) of a process from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    return (int(fields[11]) + int(fields[12])) / tick, rss


def _children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (the server's SFU workers)."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


# ----- worker: many agents in one process --------------------------------------------------------------
async def _worker(args: argparse.Namespace) -> None:
    import logging

    from meeting.agent.config import AgentConfig, read_token
    from meeting.agent.runner import Agent

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("aioice", "aiortc", "httpx", "httpcore", "websockets"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    def emit(name: str, data: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps({"event": name, "t": time.time(), **data}) + "\n")
        sys.stdout.flush()

    if args.light:
        import meeting.agent.runner as runner

        runner.MediaSession = _counting_session()  # type: ignore[misc,assignment,attr-defined]
    agents = []
    for site in args.sites.split(","):
        token_file = Path(args.tokens) / f"token-{site}"
        cfg = AgentConfig(site=site, server=args.server, token_file=token_file, sink="null", once=True, poll_s=POLL_S,
                          token=read_token(token_file))
        agents.append(Agent(cfg, on_event=emit))
    await asyncio.gather(*(a.run() for a in agents), return_exceptions=True)


def _counting_session() -> type:
    """The agent's media session, made as light as a load generator must be (``--light``, shared processes only).

    After ICE + DTLS it stops decrypting: every SRTP datagram is counted from its clear RTP header (video frames =
    marker bits) and dropped, as the SFU benchmark's light subscribers do (:class:`meeting.media.testpeer.
    _DatagramCounter`), and it sends RTCP receiver reports from those counts, so the SFU keeps it on full video.
    Everything before that — schedule, join token, WebSocket, offer/answer, ICE, DTLS — is the real agent's.
    """
    import contextlib

    from aiortc.rtp import RtcpRrPacket

    from meeting.agent.media import MediaSession
    from meeting.media.testpeer import _DatagramCounter

    class CountingSession(MediaSession):
        def __init__(self, source: str, sink: str, *, host: bool) -> None:
            super().__init__(source, sink, host=host)
            self._tasks: list[asyncio.Task[None]] = []

            @self.pc.on("connectionstatechange")
            def _on_state() -> None:
                if self.pc.connectionState == "connected" and not self._tasks:
                    self._install()

        def _install(self) -> None:
            audio_pts: set[int] = set()
            video_pts: set[int] = set()
            for line in self.pc.remoteDescription.sdp.splitlines():
                if line.startswith("m="):
                    kind, *_, fmts = line[2:].split(" ", 3)
                    (video_pts if kind == "video" else audio_pts).update(int(p) for p in fmts.split() if p.isdigit())
            transports = {id(t.receiver.transport): t.receiver.transport for t in self.pc.getTransceivers()}
            for dtls in transports.values():
                counter = _DatagramCounter(dtls._rx_srtp, audio_pts, video_pts)
                dtls._rx_srtp = counter  # type: ignore[assignment]
                self._count_at_the_socket(dtls, counter)
                self._tasks.append(asyncio.ensure_future(self._pump(dtls, counter)))

        @staticmethod
        def _count_at_the_socket(dtls: Any, counter: Any) -> None:
            """Count RTP where the datagram enters the process, before aioice's STUN parse attempt (an exception
            per packet), its queue, a coroutine wake-up and aiortc's DTLS loop: ~20k packets/s reach the 129
            light agents, and every microsecond saved there is CPU the agents' own ICE + DTLS joins get back on
            the 2 cores they share with the SFU. RTCP and DTLS still take aiortc's path."""
            for pair in dtls.transport._connection._nominated.values():
                original = pair.protocol.datagram_received

                def counted(data: bytes, addr: Any, original: Any = original) -> None:
                    if len(data) > 1 and 127 < data[0] < 192 and not 191 < data[1] < 209:  # RTP, not RTCP (RFC 5761)
                        counter.count(data)
                    else:
                        original(data, addr)

                pair.protocol.datagram_received = counted

        async def _pump(self, dtls: Any, counter: Any) -> None:
            n = 0
            while True:
                await asyncio.sleep(0.1)
                r = self.reception
                r.frames["video"], r.frames["audio"] = counter.video_frames, counter.audio
                if counter.first_at is not None and r.first_video_at is None:
                    r.first_video_at = counter.first_at
                n += 1
                if n % 10 == 0:
                    blocks = counter.receiver_reports()
                    if blocks:
                        with contextlib.suppress(ConnectionError):
                            await dtls._send_rtp(bytes(RtcpRrPacket(ssrc=0x4C540000 + id(self) % 65536,
                                                                    reports=blocks)))

        async def close(self) -> None:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await super().close()

    return CountingSession


# ----- the run -----------------------------------------------------------------------------------------
def _prepare(tmp: Path, communes: list[str]) -> str:
    from tests.agent.helpers import prepare_db, site_tokens

    db_url = f"sqlite:///{tmp / 'meeting.db'}"
    prepare_db(db_url, REPO / "inventory" / "dien-bien")
    site_tokens(db_url, [HOST, *communes], tmp)
    (tmp / "agent.yml").write_text(f"poll_s: {POLL_S}\n")
    return db_url


def _read_events(proc: subprocess.Popen[str], sink: list[dict[str, Any]]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("{"):
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            doc.setdefault("t", time.time())
            sink.append(doc)


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 3)


def inside(args: argparse.Namespace) -> dict[str, Any]:
    import threading

    from conftool.inventory import load

    inv = load(REPO / "inventory" / "dien-bien")
    communes = sorted(s.id for s in inv.by_level("commune"))[: args.n]
    tmp = Path(tempfile.mkdtemp(prefix="lt-agents-bench-"))
    procs: list[subprocess.Popen[str]] = []
    events: list[dict[str, Any]] = []
    env = {**os.environ, "PYTHONPATH": str(REPO), "LIENTHONG_LOG": "WARNING"}
    meeting = [str(REPO / ".venv" / "bin" / "meeting")]
    try:
        db_url = _prepare(tmp, communes)
        server_log = (tmp / "server.log").open("w")
        launcher = meeting if not args.debug_server else [
            sys.executable, "-c", "import faulthandler, signal, sys; faulthandler.register(signal.SIGUSR1, "
            "all_threads=True); from meeting.cli import main; sys.argv[0] = 'meeting'; main()"]
        server = subprocess.Popen([*launcher, "serve", "--host", ADDR, "--port", str(PORT), "--db", db_url,
                                   "--no-reminders"], stdout=server_log, stderr=server_log, text=True,
                                  env={**env, "LIENTHONG_SFU_WORKERS": str(args.sfu_workers)})
        procs.append(server)
        url = f"http://{ADDR}:{PORT}"
        deadline = time.monotonic() + 120  # a loaded 2-core machine imports slowly
        while b"startup complete" not in (tmp / "server.log").read_bytes():
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("meeting serve did not start:\n" + (tmp / "server.log").read_text()[-2000:])
            time.sleep(0.1)

        errlog = (tmp / "agents.log").open("w")

        def spawn(cmd: list[str]) -> subprocess.Popen[str]:
            cmd = ["nice", "-n", str(GENERATOR_NICE), *cmd]  # the server under test gets the CPU first
            p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errlog, env=env, text=True)
            threading.Thread(target=_read_events, args=(p, events), daemon=True).start()
            procs.append(p)
            return p

        t_launch = time.time()
        config = ["--config", str(tmp / "agent.yml"), "--once", "--json"]
        host = spawn([*meeting, "agent", "--site", HOST, "--server", url, "--token-file", str(tmp / f"token-{HOST}"),
                      *config])
        single_site = communes[-1]
        single = spawn([*meeting, "agent", "--site", single_site, "--server", url, "--token-file",
                        str(tmp / f"token-{single_site}"), *config])
        shared = communes[:-1]
        workers = []
        for i in range(0, len(shared), args.per_process):
            chunk = shared[i : i + args.per_process]
            workers.append(spawn([sys.executable, __file__, "--worker", "--sites", ",".join(chunk), "--server", url,
                                  "--tokens", str(tmp), *(["--light"] if args.light else [])]))
        # the meeting is scheduled once every agent runs (heartbeat done): a room PC is on long before a meeting
        deadline = time.monotonic() + 120
        while sum(e.get("event") == "started" for e in events) < len(communes) + 1:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {sum(e.get('event') == 'started' for e in events)} agents started")
            time.sleep(0.2)
        launched = time.time() - t_launch
        from tests.agent.helpers import create_meeting

        meeting_id, start_at = create_meeting(db_url, [HOST, *communes], start_in_s=args.lead, minutes=args.minutes,
                                              title="Họp thử 129 xã")
        start = start_at.timestamp()

        def first(name: str, site: str, early: float = 1.0) -> float | None:
            ts = [e["t"] for e in events
                  if e.get("event") == name and e.get("site") == site and e["t"] >= start - early]
            return min(ts) - start if ts else None

        wait_until = start + args.timeout
        while time.time() < wait_until:
            got = sum(first("receiving", s) is not None for s in communes)
            if got == len(communes):
                break
            time.sleep(0.25)
        connected = {s: first("connected", s) for s in communes}
        receiving = {s: first("receiving", s) for s in communes}
        host_connected = first("connected", HOST, early=60)  # the host hall opens HOST_LEAD_S before the start

        # steady window: CPU and RSS
        if args.debug_server:
            os.kill(server.pid, 10)  # SIGUSR1: all thread stacks into the server log
        time.sleep(2)
        pids = {"server": [server.pid], "sfu_workers": _children(server.pid), "host_agent": [host.pid],
                "single_agent": [single.pid], "shared": [w.pid for w in workers]}
        before = {k: [_proc_stat(p) for p in v] for k, v in pids.items()}
        t0 = time.monotonic()
        time.sleep(args.window)
        dt = time.monotonic() - t0
        after = {k: [_proc_stat(p) for p in v] for k, v in pids.items()}
        cpu = {k: sum(a[0] - b[0] for a, b in zip(after[k], before[k], strict=True)) / dt for k in pids}
        rss = {k: sum(a[1] for a in after[k]) for k in pids}
        n_shared = len(shared)
        c_ok = [v for v in connected.values() if v is not None]
        r_ok = [v for v in receiving.values() if v is not None]
        return {
            "n": len(communes),
            "meeting_id": meeting_id,
            "lead_s": args.lead,
            "sfu_workers": args.sfu_workers,
            "agents_running_after_launch_s": round(launched, 2),
            "per_process": args.per_process,
            "shared_agents_light": args.light,
            "shared_processes": len(workers),
            "connected": len(c_ok),
            "receiving": len(r_ok),
            "time_to_all_connected_s": round(max(c_ok), 3) if len(c_ok) == len(communes) else None,
            "time_to_all_receiving_s": round(max(r_ok), 3) if len(r_ok) == len(communes) else None,
            "connected_s": {"min": _pct(c_ok, 0), "median": _pct(c_ok, 0.5), "p95": _pct(c_ok, 0.95)},
            "receiving_s": {"min": _pct(r_ok, 0), "median": _pct(r_ok, 0.5), "p95": _pct(r_ok, 0.95)},
            "host_connected_s": None if host_connected is None else round(host_connected, 3),
            "goal_all_receiving_within_s": 5.0,
            "steady_window_s": round(dt, 2),
            "cpu_s_per_s": {
                "server": round(cpu["server"], 3),
                "sfu_workers": round(cpu["sfu_workers"], 3),
                "host_agent": round(cpu["host_agent"], 3),
                "single_agent_process": round(cpu["single_agent"], 4),
                "shared_per_agent": round(cpu["shared"] / max(1, n_shared), 4),
                "all_agents": round(cpu["shared"] + cpu["single_agent"], 3),
            },
            "rss_mib": {
                "server": round(rss["server"] / 2**20, 1),
                "sfu_workers": round(rss["sfu_workers"] / 2**20, 1),
                "host_agent": round(rss["host_agent"] / 2**20, 1),
                "single_agent_process": round(rss["single_agent"] / 2**20, 1),
                "shared_per_agent": round(rss["shared"] / max(1, n_shared) / 2**20, 1),
            },
            "late_or_missing": sorted(s for s, v in receiving.items() if v is None or v > 5.0),
            "load_average": os.getloadavg(),
        }
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def outside(argv: list[str]) -> int:
    pid = os.getpid()
    ns, if_a, if_b = f"lt-agents-bench-{pid}", f"lta{pid}a", f"lta{pid}b"
    # The agents' control sockets go to a temp dir of this run, never to the machine's /run/lienthong
    run_dir = Path(tempfile.mkdtemp(prefix="lt-agents-bench-run-"))
    try:
        _ip("netns", "add", ns)
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", ns, "link", "add", if_a, "type", "veth", "peer", "name", if_b)
        _ip("-n", ns, "addr", "add", f"{ADDR}/24", "dev", if_a)
        _ip("-n", ns, "link", "set", if_a, "up")
        _ip("-n", ns, "link", "set", if_b, "up")
        env = {**os.environ, "PYTHONPATH": str(REPO), "LIENTHONG_RUN_DIR": str(run_dir)}
        return subprocess.call(["ip", "netns", "exec", ns, sys.executable, __file__, "--inside", *argv], env=env)
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shutil.rmtree(run_dir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=129, help="communes (all 129 of the reference inventory)")
    parser.add_argument("--per-process", type=int, default=16, help="agents per shared process")
    parser.add_argument("--lead", type=float, default=25.0,
                        help="seconds from scheduling the meeting (all agents running) to its start")
    parser.add_argument("--minutes", type=float, default=3.0, help="meeting length")
    parser.add_argument("--window", type=float, default=10.0, help="steady-state measuring window (s)")
    parser.add_argument("--timeout", type=float, default=60.0, help="give up waiting this long after the start")
    parser.add_argument("--sfu-workers", type=int, default=0,
                        help="LIENTHONG_SFU_WORKERS of the server (0: one SFU in the server process)")
    parser.add_argument("--light", action=argparse.BooleanOptionalAction, default=True,
                        help="shared-process agents count datagrams after DTLS instead of decrypting (default)")
    parser.add_argument("--debug-server", action="store_true", help="SIGUSR1 dumps the server's threads into its log")
    parser.add_argument("--append", action="store_true", help="add this run to the existing results file")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (DB, server and agent logs)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "agents.json")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sites", help=argparse.SUPPRESS)
    parser.add_argument("--server", help=argparse.SUPPRESS)
    parser.add_argument("--tokens", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        asyncio.run(_worker(args))
        return 0
    if not args.inside:
        if os.geteuid() != 0:
            print("bench/agents.py creates a network namespace: run it as root", file=sys.stderr)
            return 2
        return outside(sys.argv[1:])
    result = inside(args)
    previous = json.loads(args.out.read_text())["runs"] if args.append and args.out.exists() else []
    doc = {
        "benchmark": "agents",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "kernel": platform.release()},
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "runs": [*previous, result],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(result, indent=2, ensure_ascii=False))
    ok = result["time_to_all_receiving_s"] is not None and result["time_to_all_receiving_s"] <= 5.0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
