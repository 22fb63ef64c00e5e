"""Benchmark: one publisher (640×360 VP8 @ 15 fps ~800 kbps + Opus) → N subscribers through our SFU.

Runs inside a network namespace it creates (``lt-media-bench-<pid>``, veth end with 10.99.0.1/24, ``lo``) and
removes afterwards, also on failure; aioice gathers no loopback candidates and nothing leaves the namespace.

Per N (default 8, 32, 129, then larger until the SFU process saturates or ``--max``):
* the SFU runs in THIS process (``meeting.media.sfu.Sfu`` + ``SignalingSession`` per peer); the publisher
  (``testpeer --role replay``: a 10 s loop of libvpx VP8 at 800 kbps with one keyframe, plus Opus, encoded once
  and replayed in real time, so the generator's CPU goes to subscribers; a PLI restarts the loop at its keyframe),
  the light subscribers (ICE + DTLS, then only count datagrams from clear RTP headers) and one probe that really
  decodes run in separate processes (``meeting.media.testpeer``), light subscribers 32 per process;
* setup: from starting the subscriber processes to N/N ICE+DTLS connected;
* a measuring window: SFU-process CPU-s/s (``time.process_time``: all threads of this process), per-subscriber
  video fps and audio packets/s by the subscriber's own clock (min / median), publisher bitrate as received;
  ``delivered_frames`` per subscriber = its frames per second / the publisher's 15 fps (the goal: ≥ 99 % for
  every subscriber), and, to tell where frames went missing, ``delivered_of_sfu_input`` = (frames the SFU sent it /
  frames the SFU received, counted in the SFU at the same instants) × (1 − its video packet loss from RTP sequence
  gaps; a light subscriber cannot reassemble frames, so a frame with a lost packet counts as lost);
* late joiner: a decoding probe joins after the N are up; time from its ICE+DTLS connected (and from its offer)
  to its first decoded picture.

Subscriber processes run at nice 10, the SFU (or Janus) and the publisher at 0, for both servers alike.
The load generator (publisher, N light subscribers, probe) shares the 2 cores with the SFU,
so the largest N where every subscriber still gets ≥ 99 % can be limited by the generator, not the SFU; the
capacity projection from SFU CPU per subscriber is reported separately and labelled as a projection.
With ``--janus`` each N also runs against Janus 1.1 (Debian ``janus``, VideoRoom, HTTP API, no STUN) started
inside the same namespace with a generated config, same publisher, same light subscribers; its CPU-s/s is read
from /proc; ``cpu_ratio_vs_janus`` is given only where Janus delivered ≥ 99 % to every subscriber. Without it the
JSON says ``"janus": "not measured"``. Writes ``bench/results/sfu.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PER_PROCESS = 32
GENERATOR_NICE = 10
"""Subscriber processes run at nice 10 (SFU/Janus and the publisher at 0): the server under test gets the CPU it
needs first and the load generator takes what is left, for ours and for Janus alike."""
FPS = 15
PUBLISHER = ["--width", "640", "--height", "360", "--fps", "15", "--bitrate", "800000", "--luma", "90"]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def outside(argv: list[str]) -> int:
    """Create the namespace, run this script inside it, remove the namespace whatever happens."""
    pid = os.getpid()
    ns, if_a, if_b = f"lt-media-bench-{pid}", f"ltb{pid}a", f"ltb{pid}b"
    try:
        _ip("netns", "add", ns)
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", ns, "link", "add", if_a, "type", "veth", "peer", "name", if_b)
        _ip("-n", ns, "addr", "add", "10.99.0.1/24", "dev", if_a)
        _ip("-n", ns, "link", "set", if_a, "up")
        _ip("-n", ns, "link", "set", if_b, "up")
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        return subprocess.call(["ip", "netns", "exec", ns, sys.executable, __file__, "--inside", *argv], env=env)
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


async def _sent_frames(sfu: Any, room: str, workers: list[Any]) -> tuple[list[int], float]:
    """Video frames each subscriber's sender has taken (in whichever SFU process serves it), and workers' CPU-s."""
    if not workers:
        peers = [p for p in sfu.room(room).peers.values() if not p.is_host and not p.peer_id.startswith("relay-")]
        return [p.outputs["video"].packer.packed for p in peers], 0.0
    sent: list[int] = []
    cpu = 0.0
    for w in workers:
        st = await w.stats()
        cpu += st["cpu_s"]
        for peer in st["rooms"][room]["peers"]:
            if not peer["host"]:
                sent.append(peer["forwarded"].get("video", 0))
    return sent, cpu


async def _run_n(n: int, window: float, n_workers: int = 0) -> dict[str, Any]:
    from meeting.media.harness import Harness
    from meeting.media.sfu import Sfu

    sfu = Sfu()
    await sfu.start()
    harness = Harness(sfu, room=f"bench-{n}", generator_nice=GENERATOR_NICE)
    result: dict[str, Any] = {"n": n, "started": time.strftime("%H:%M:%S"), "load_average_1m": os.getloadavg()[0]}
    try:
        pub = await harness.add("replay", site="host", is_host=True, extra=PUBLISHER)
        await harness.wait_connected(pub, timeout=120)  # pre-encoding the loop is slow on a loaded machine
        await asyncio.sleep(2.0)  # let the publisher's encoder settle
        workers = [await harness.add_worker() for _ in range(n_workers)]
        t0 = time.monotonic()
        groups: list[Any] = []
        left = n
        while left > 0:
            count = min(PER_PROCESS, left)
            worker = workers[len(groups) % len(workers)] if workers else None
            groups.append(await harness.add("light", count, site="commune-", worker=worker))
            left -= count
        for g in groups:
            await harness.wait_connected(g, timeout=120)
        result["setup_all_connected_s"] = round(time.monotonic() - t0, 3)
        await asyncio.sleep(2.0)
        host = sfu.room(harness.room).host()
        assert host is not None
        src_v, src_a = host.sources["video"], host.sources["audio"]
        pub0 = (await pub.report())[0]
        before = [r for g in groups for r in await g.report()]
        sent0, wcpu0 = await _sent_frames(sfu, harness.room, workers)
        v0, a0, b0, cpu0, w0 = src_v.frames, src_a.frames, src_v.bytes, time.process_time(), time.monotonic()
        drops0 = _udp_drops()
        await asyncio.sleep(window)
        drops1 = _udp_drops()
        cpu1, w1 = time.process_time(), time.monotonic()
        v1, a1, b1 = src_v.frames, src_a.frames, src_v.bytes
        sent1, wcpu1 = await _sent_frames(sfu, harness.room, workers)
        after = [r for g in groups for r in await g.report()]
        pub1 = (await pub.report())[0]
        pub_sent_fps = (pub1["sent_video_frames"] - pub0["sent_video_frames"]) / (pub1["now"] - pub0["now"])
        wall = w1 - w0
        pub_frames = v1 - v0
        pairs = list(zip(after, before, strict=True))
        # each subscriber's rates by its own clock, so the time a report takes to come back does not count
        fps = [(a["video_frames"] - b["video_frames"]) / (a["now"] - b["now"]) for a, b in pairs]
        apps = [(a["audio_packets"] - b["audio_packets"]) / (a["now"] - b["now"]) for a, b in pairs]
        # packets the subscriber never got (RTP sequence gaps) over what the SFU sent it
        loss = [
            1 - (a["video_received"] - b["video_received"]) / max(1, a["video_expected"] - b["video_expected"])
            for a, b in pairs
        ]
        # frames the SFU handed to each subscriber's sender over frames it received, same process, same instants
        sent = [(s1 - s0) / max(1, pub_frames) for s1, s0 in zip(sent1, sent0, strict=True)]
        delivered_in = [min(1.0, s) * (1 - max(0.0, lo)) for s, lo in zip(sent, loss, strict=True)]
        # the goal counts against what the publisher sends (15 fps), whoever fell behind: publisher, SFU or network
        delivered = [min(1.0, f / FPS) for f in fps]
        cpu = (cpu1 - cpu0 + wcpu1 - wcpu0) / wall
        result.update(
            workers=n_workers,
            window_s=round(wall, 2),
            sfu_cpu_s_per_s=round(cpu, 3),
            sfu_primary_cpu_s_per_s=round((cpu1 - cpu0) / wall, 3),
            sfu_cpu_per_subscriber_ms_per_s=round(1000 * cpu / n, 3),
            publisher_sent_fps=round(pub_sent_fps, 2),
            publisher_fps=round(pub_frames / wall, 2),
            udp_rcvbuf_drops_in_namespace=drops1 - drops0,
            publisher_audio_pps=round((a1 - a0) / wall, 1),
            publisher_video_kbps=round(8 * (b1 - b0) / wall / 1000, 1),
            subscriber_fps={"min": round(min(fps), 2), "median": round(statistics.median(fps), 2)},
            subscriber_audio_pps={"min": round(min(apps), 1), "median": round(statistics.median(apps), 1)},
            sfu_sent_over_received_frames={"min": round(min(sent), 4), "median": round(statistics.median(sent), 4)},
            subscriber_video_packet_loss={"max": round(max(loss), 4), "median": round(statistics.median(loss), 4)},
            delivered_of_sfu_input={"min": round(min(delivered_in), 4),
                                    "median": round(statistics.median(delivered_in), 4)},
            delivered_frames={"min": round(min(delivered), 4), "median": round(statistics.median(delivered), 4)},
            subscribers_at_99pct=sum(d >= 0.99 for d in delivered),
        )
        probe = await harness.add("probe", site="late-joiner", worker=workers[0] if workers else None)
        if not await _probe_connected(harness, probe, result):
            return result
        rep: dict[str, Any] = {}
        for _ in range(50):
            rep = (await probe.report())[0]
            if rep.get("first_frame_after_connect_s") is not None:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(2.0)
        rep2 = (await probe.report())[0]
        result["late_joiner"] = {
            "connect_s": _r(rep.get("connect_s")),
            "first_frame_after_connect_s": _r(rep.get("first_frame_after_connect_s")),
            "first_frame_after_offer_s": _r(rep.get("first_frame_after_offer_s")),
            "decoded_fps": round((rep2["decoded"]["video"] - rep["decoded"]["video"]) / (rep2["now"] - rep["now"]), 2),
        }
    finally:
        await harness.close()
        await sfu.stop()
    return result


JANUS_LIB = "/usr/lib/x86_64-linux-gnu/janus"
JANUS_PLUGINS_OFF = ("audiobridge", "duktape", "echotest", "lua", "nosip", "recordplay", "sip", "streaming", "textroom",
                     "videocall", "voicemail")


def _janus_config(cfg: Path) -> None:
    """Janus with only the HTTP transport and VideoRoom, no STUN/TURN, HTTP API on the namespace address."""
    off = ",".join(f"libjanus_{p}.so" for p in JANUS_PLUGINS_OFF)
    tr_off = ",".join(f"libjanus_{t}.so" for t in ("websockets", "mqtt", "nanomsg", "pfunix", "rabbitmq"))
    ev_off = ",".join(f"libjanus_{e}evh.so" for e in ("gelf", "mqtt", "nanomsg", "rabbitmq", "sample", "ws"))
    (cfg / "janus.jcfg").write_text(
        f'general: {{ configs_folder = "{cfg}" plugins_folder = "{JANUS_LIB}/plugins" '
        f'transports_folder = "{JANUS_LIB}/transports" events_folder = "{JANUS_LIB}/events" '
        f'loggers_folder = "{JANUS_LIB}/loggers" debug_level = 3 }}\n'
        'media: { rtp_port_range = "20000-40000" }\nnat: { nice_debug = false }\n'
        f'plugins: {{ disable = "{off}" }}\ntransports: {{ disable = "{tr_off}" }}\n'
        f'events: {{ broadcast = false disable = "{ev_off}" }}\nloggers: {{ disable = "libjanus_jsonlog.so" }}\n'
    )
    (cfg / "janus.transport.http.jcfg").write_text(
        'general: { json = "compact" base_path = "/janus" http = true port = 8088 ip = "10.99.0.1" https = false }\n'
        "admin: { admin_http = false admin_https = false }\n"
    )
    (cfg / "janus.plugin.videoroom.jcfg").write_text(
        'general: { }\nroom-1234: { description = "bench" publishers = 1 bitrate = 2000000 fir_freq = 0 '
        'audiocodec = "opus" videocodec = "vp8" }\n'
    )


def _udp_drops() -> int:
    """UDP datagrams the kernel dropped for full receive buffers in this namespace (whoever the receiver was)."""
    lines = [ln.split() for ln in Path("/proc/net/snmp").read_text().splitlines() if ln.startswith("Udp:")]
    header, values = lines[0], lines[1]
    return int(values[header.index("RcvbufErrors")])


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _run_janus(n: int, window: float) -> dict[str, Any]:
    """The same publisher and subscribers against Janus VideoRoom, started here inside the same namespace."""
    import shutil
    import tempfile

    import httpx

    from meeting.media.harness import Harness
    from meeting.media.sfu import Sfu

    cfg = Path(tempfile.mkdtemp(prefix="lt-janus-"))
    _janus_config(cfg)
    log = (cfg / "janus.log").open("w")
    proc = await asyncio.create_subprocess_exec("janus", "-F", str(cfg), "-C", str(cfg / "janus.jcfg"),
                                                stdout=log, stderr=subprocess.STDOUT)
    url = "http://10.99.0.1:8088/janus"
    # our SFU is not started: every peer talks to Janus
    harness = Harness(Sfu(), room=f"janus-{n}", generator_nice=GENERATOR_NICE)
    result: dict[str, Any] = {"n": n, "server": "janus", "started": time.strftime("%H:%M:%S"),
                              "load_average_1m": os.getloadavg()[0]}
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(100):
                try:
                    if (await client.get(url + "/info")).status_code == 200:
                        break
                except httpx.HTTPError:
                    await asyncio.sleep(0.1)
        jextra = ["--janus", url]
        pub = await harness.add("replay", site="host", extra=[*PUBLISHER, *jextra])
        feed = None
        for _ in range(1200):  # up to 120 s: pre-encoding the loop is slow on a loaded machine
            feed = next((e["feed"] for e in pub.events if e.get("event") == "janus-feed"), None)
            if feed is not None:
                break
            await asyncio.sleep(0.1)
        if feed is None:
            raise RuntimeError("the publisher never got a Janus feed id")
        await harness.wait_connected(pub, timeout=120)  # pre-encoding the loop is slow on a loaded machine
        await asyncio.sleep(2.0)
        t0 = time.monotonic()
        groups: list[Any] = []
        left = n
        while left > 0:
            count = min(PER_PROCESS, left)
            groups.append(await harness.add("light", count, site="commune-", extra=[*jextra, "--feed", str(feed)]))
            left -= count
        for g in groups:
            await harness.wait_connected(g, timeout=120)
        result["setup_all_connected_s"] = round(time.monotonic() - t0, 3)
        await asyncio.sleep(2.0)
        before = [r for g in groups for r in await g.report()]
        cpu0, w0 = _proc_cpu_s(proc.pid), time.monotonic()
        await asyncio.sleep(window)
        cpu1, w1 = _proc_cpu_s(proc.pid), time.monotonic()
        after = [r for g in groups for r in await g.report()]
        pairs = list(zip(after, before, strict=True))
        fps = [(a["video_frames"] - b["video_frames"]) / (a["now"] - b["now"]) for a, b in pairs]
        apps = [(a["audio_packets"] - b["audio_packets"]) / (a["now"] - b["now"]) for a, b in pairs]
        delivered = [min(1.0, f / FPS) for f in fps]
        cpu = (cpu1 - cpu0) / (w1 - w0)
        result.update(
            window_s=round(w1 - w0, 2),
            sfu_cpu_s_per_s=round(cpu, 3),
            sfu_cpu_per_subscriber_ms_per_s=round(1000 * cpu / n, 3),
            subscriber_fps={"min": round(min(fps), 2), "median": round(statistics.median(fps), 2)},
            subscriber_audio_pps={"min": round(min(apps), 1), "median": round(statistics.median(apps), 1)},
            delivered_frames={"min": round(min(delivered), 4), "median": round(statistics.median(delivered), 4)},
            subscribers_at_99pct=sum(d >= 0.99 for d in delivered),
        )
        probe = await harness.add("probe", site="late-joiner", extra=[*jextra, "--feed", str(feed)])
        if not await _probe_connected(harness, probe, result):
            return result
        rep: dict[str, Any] = {}
        for _ in range(50):
            rep = (await probe.report())[0]
            if rep.get("first_frame_after_connect_s") is not None:
                break
            await asyncio.sleep(0.1)
        result["late_joiner"] = {
            "connect_s": _r(rep.get("connect_s")),
            "first_frame_after_connect_s": _r(rep.get("first_frame_after_connect_s")),
            "first_frame_after_offer_s": _r(rep.get("first_frame_after_offer_s")),
        }
    finally:
        await harness.close()
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        log.close()
        shutil.rmtree(cfg, ignore_errors=True)
    return result


async def _probe_connected(harness: Any, probe: Any, result: dict[str, Any]) -> bool:
    """Wait for the late joiner; on a starved machine record that it did not connect instead of losing the run."""
    try:
        await harness.wait_connected(probe, timeout=120)
    except TimeoutError as exc:
        result["late_joiner"] = {"error": str(exc)}
        return False
    return True


def _r(v: Any) -> Any:
    return round(v, 3) if isinstance(v, float) else v


def _projection(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Subscribers per core from the worst measured SFU CPU per subscriber at N >= 32 (a projection, said so).

    Only runs where every subscriber got >= 99 % count: a starved SFU forwards less and looks cheaper than it is.
    """
    per_sub = [r["sfu_cpu_per_subscriber_ms_per_s"] for r in runs
               if r["n"] >= 32 and r["subscribers_at_99pct"] == r["n"]]
    if not per_sub:
        return None
    worst = max(per_sub) / 1000
    return {
        "method": "projection from the worst measured SFU CPU per subscriber at N>=32 among runs where every "
        "subscriber got >= 99 % of frames (not measured at that N)",
        "sfu_cpu_per_subscriber_s_per_s": round(worst, 5),
        "subscribers_per_core": int(1 / worst),
        "subscribers_per_2_core_host_with_2_workers": int(2 / worst),
    }


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def _summary(n: int, ours: list[dict[str, Any]], janus: list[dict[str, Any]],
             stock: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the repeats of one N (ours and Janus interleaved, so both saw the same load)."""
    loads = [r["load_average_1m"] for r in ours + janus + stock]
    ratios = [r["cpu_ratio_vs_janus"] for r in ours if "cpu_ratio_vs_janus" in r]
    doc: dict[str, Any] = {
        "n": n,
        "repeats": len(ours),
        "load_average_1m": {"min": round(min(loads), 2), "max": round(max(loads), 2)},
        "sfu_cpu_s_per_s_median": _median([r["sfu_cpu_s_per_s"] for r in ours]),
        "sfu_cpu_per_subscriber_ms_per_s_median": _median([r["sfu_cpu_per_subscriber_ms_per_s"] for r in ours]),
        "subscribers_at_99pct_min": min(r["subscribers_at_99pct"] for r in ours),
    }
    if janus:
        doc["janus_cpu_s_per_s_median"] = _median([r["sfu_cpu_s_per_s"] for r in janus])
        doc["janus_repeats_all_at_99pct"] = sum(r["subscribers_at_99pct"] == n for r in janus)
        doc["cpu_ratio_vs_janus_median"] = _median(ratios)
        doc["cpu_ratio_vs_janus_each"] = ratios
    if stock:
        doc["stock_sender_cpu_s_per_s_median"] = _median([r["sfu_cpu_s_per_s"] for r in stock])
        fast, slow = doc["sfu_cpu_s_per_s_median"], doc["stock_sender_cpu_s_per_s_median"]
        doc["fast_over_stock_sender"] = round(fast / slow, 3) if fast and slow else None
    return doc


async def _repeat(args: argparse.Namespace, n: int, rep: int, ours: list[dict[str, Any]],
                  stock: list[dict[str, Any]], janus: list[dict[str, Any]]) -> None:
    """One repeat at N: ours, optionally ours with aiortc's send loop, then Janus, back to back."""
    import meeting.media.passthrough as passthrough

    res = await _run_n(n, args.window, args.workers)
    res["repeat"] = rep
    ours.append(res)
    logging.warning("bench sfu: %s", json.dumps(res))
    if args.ab_stock:  # the same SFU with aiortc's own send loop, right after: the optimisation's A/B
        passthrough.FAST_SEND = False
        try:
            sres = await _run_n(n, args.window, args.workers)
        finally:
            passthrough.FAST_SEND = True
        sres.update(repeat=rep, sender="aiortc _run_rtp (stock)")
        stock.append(sres)
        logging.warning("bench sfu (stock sender): %s", json.dumps(sres))
    if args.janus:
        jres = await _run_janus(n, args.window)
        jres["repeat"] = rep
        janus.append(jres)
        logging.warning("bench sfu (janus): %s", json.dumps(jres))
        if jres["subscribers_at_99pct"] == n:
            res["cpu_ratio_vs_janus"] = round(res["sfu_cpu_s_per_s"] / max(1e-6, jres["sfu_cpu_s_per_s"]), 2)


async def inside(args: argparse.Namespace) -> dict[str, Any]:
    import aiortc
    import av

    load_before = os.getloadavg()
    runs: list[dict[str, Any]] = []
    janus_runs: list[dict[str, Any]] = []
    stock_runs: list[dict[str, Any]] = []
    summary: list[dict[str, Any]] = []
    sizes = list(args.n)
    error: str | None = None
    i = 0
    while i < len(sizes) and error is None:
        n = sizes[i]
        ours_n: list[dict[str, Any]] = []
        janus_n: list[dict[str, Any]] = []
        stock_n: list[dict[str, Any]] = []
        for rep in range(args.repeat):
            logging.warning("bench sfu: N=%d (repeat %d)", n, rep + 1)
            try:
                await _repeat(args, n, rep + 1, ours_n, stock_n, janus_n)
            except Exception as exc:  # keep what was measured so far (a starved machine can time out a setup)
                error = f"N={n} repeat {rep + 1}: {exc!r}"
                logging.warning("bench sfu: stopped: %s", error)
                break
        runs += ours_n
        janus_runs += janus_n
        stock_runs += stock_n
        if ours_n:
            summary.append(_summary(n, ours_n, janus_n, stock_n))
        i += 1
        if i == len(sizes) and args.max and n < args.max and ours_n and ours_n[-1]["subscribers_at_99pct"] == n:
            sizes.append(min(args.max, n + args.step))
    ok = [r for r in runs if r["subscribers_at_99pct"] == r["n"]]
    largest = max((r["n"] for r in ok), default=0)
    projection = _projection(runs)
    doc: dict[str, Any] = {
        "bench": "sfu",
        "load_average_before": load_before,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "versions": {"aiortc": aiortc.__version__, "av": av.__version__},
        "publisher": "640x360 VP8 @ 15 fps (libvpx, 800 kbps, pre-encoded 10 s loop, one keyframe) + Opus 20 ms; "
        "separate process",
        "subscribers": f"light (ICE+DTLS, then count datagrams and send RTCP RR), {PER_PROCESS} per process at nice "
        f"{GENERATOR_NICE}; one decoding probe",
        "method": f"per N: {args.repeat} repeat(s), each ours then Janus back to back (same load); medians in "
        "summary; a ratio only where that repeat's Janus run delivered >= 99 % to every subscriber",
        "summary": summary,
        "runs": runs,
        "largest_n_all_at_99pct_measured": largest,
        "capacity_projection": projection,
        "janus": janus_runs or "not measured",
    }
    if stock_runs:
        doc["stock_sender_runs"] = stock_runs
    if error is not None:
        doc["stopped_early"] = error
    return doc


def table(doc: dict[str, Any]) -> str:
    """The README table: one row per run, ours and Janus side by side where both ran."""
    janus = {(r["n"], r.get("repeat")): r for r in doc.get("janus", []) if isinstance(doc.get("janus"), list)}
    rows = [
        "| N | server | workers | CPU-s/s | ms/s per sub | fps min/med | audio pps min/med | ≥99 % frames | "
        "setup s | late joiner s | ratio vs Janus |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def row(r: dict[str, Any], server: str) -> str:
        late = (r.get("late_joiner") or {}).get("first_frame_after_connect_s")
        return (
            f"| {r['n']} | {server} | {r.get('workers', '–')} | {r['sfu_cpu_s_per_s']} | "
            f"{r['sfu_cpu_per_subscriber_ms_per_s']} | {r['subscriber_fps']['min']}/{r['subscriber_fps']['median']} | "
            f"{r['subscriber_audio_pps']['min']}/{r['subscriber_audio_pps']['median']} | "
            f"{r['subscribers_at_99pct']}/{r['n']} | {r['setup_all_connected_s']} | {late} | "
            f"{r.get('cpu_ratio_vs_janus', '–')} |"
        )

    for r in doc["runs"]:
        rows.append(row(r, "ours"))
        j = janus.get((r["n"], r.get("repeat")))  # the Janus run of the same repeat (same load)
        if j is not None and r.get("workers", 0) == 0:
            rows.append(row(j, "Janus 1.1"))
    if doc.get("summary"):
        rows += [
            "",
            "| N | repeats | load 1m | ours CPU-s/s (median) | Janus CPU-s/s (median) | ratio vs Janus (median) | "
            "min subscribers ≥99 % |",
            "|---|---|---|---|---|---|---|",
        ]
        for m in doc["summary"]:
            load = m["load_average_1m"]
            rows.append(
                f"| {m['n']} | {m['repeats']} | {load['min']}–{load['max']} | {m['sfu_cpu_s_per_s_median']} | "
                f"{m.get('janus_cpu_s_per_s_median', '–')} | {m.get('cpu_ratio_vs_janus_median') or '–'} | "
                f"{m['subscribers_at_99pct_min']}/{m['n']} |"
            )
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, nargs="+", default=[8, 32, 129])
    parser.add_argument("--max", type=int, default=0, help="keep adding --step subscribers up to this N")
    parser.add_argument("--step", type=int, default=64)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=0,
                        help="subscribers on this many worker SFU processes fed by a relay (0: all on the primary)")
    parser.add_argument("--janus", action="store_true", help="also run each N against Janus VideoRoom (anchor)")
    parser.add_argument("--ab-stock", action="store_true",
                        help="after each run of ours, again with aiortc's own send loop (the optimisation's A/B)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per N (ours and Janus interleaved); medians")
    parser.add_argument("--table", action="store_true", help="print the markdown table of --out and exit")
    parser.add_argument("--append", action="store_true", help="add these runs to an existing --out file")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "sfu.json")
    args = parser.parse_args()
    if args.table:
        print(table(json.loads(args.out.read_text())))
        return 0
    if os.geteuid() != 0:
        print("bench/sfu.py creates a network namespace: run it as root", file=sys.stderr)
        return 2
    if not args.inside:
        return outside(sys.argv[1:])
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    logging.getLogger("meeting.media.sfu").setLevel(logging.INFO)  # video mode switches: why frames went missing
    doc = asyncio.run(inside(args))
    if args.append and args.out.exists():
        old = json.loads(args.out.read_text())
        doc["runs"] = old["runs"] + doc["runs"]
        if isinstance(old.get("janus"), list):
            doc["janus"] = old["janus"] + (doc["janus"] if isinstance(doc["janus"], list) else [])
        doc["load_average_before"] = old.get("load_average_before")
        doc["summary"] = old.get("summary", []) + doc["summary"]
        if old.get("stock_sender_runs") or doc.get("stock_sender_runs"):
            doc["stock_sender_runs"] = old.get("stock_sender_runs", []) + doc.get("stock_sender_runs", [])
        ok = [r["n"] for r in doc["runs"] if r["subscribers_at_99pct"] == r["n"]]
        doc["largest_n_all_at_99pct_measured"] = max(ok, default=0)
        doc["capacity_projection"] = _projection(doc["runs"])
    doc["load_average_after"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
