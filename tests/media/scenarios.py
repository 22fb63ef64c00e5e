"""Scenarios that run INSIDE the test namespace (started by ``MediaNetns.run_scenario``): an SFU in this process,
real aiortc peers in subprocesses. Each prints one JSON line of measurements; the pytest side asserts on it.

This process is the SFU process, so the codec factories of aiortc are wrapped here to count every decoder and
encoder the server creates: forwarding must create none.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiortc.rtcrtpreceiver
import aiortc.rtcrtpsender

from meeting.media.harness import Harness, PeerGroup
from meeting.media.sfu import Sfu, SfuConfig

CODEC_CALLS = {"decoders": 0, "encoders": 0}


def _count_codecs() -> None:
    real_dec = aiortc.rtcrtpreceiver.get_decoder  # type: ignore[attr-defined]
    real_enc = aiortc.rtcrtpsender.get_encoder  # type: ignore[attr-defined]

    def get_decoder(codec: Any) -> Any:
        CODEC_CALLS["decoders"] += 1
        return real_dec(codec)

    def get_encoder(codec: Any) -> Any:
        CODEC_CALLS["encoders"] += 1
        return real_enc(codec)

    aiortc.rtcrtpreceiver.get_decoder = get_decoder  # type: ignore[attr-defined]
    aiortc.rtcrtpsender.get_encoder = get_encoder  # type: ignore[attr-defined]


def _codec_doc(sfu: Sfu) -> dict[str, Any]:
    opened = [
        out.packer.opened_codec_context for room in sfu.rooms.values() for p in room.peers.values()
        for out in p.outputs.values()
    ]
    return {**CODEC_CALLS, "packer_contexts_opened": sum(opened), "packers": len(opened)}


async def _until(check: Callable[[], Awaitable[bool]], timeout: float, step: float = 0.2) -> float | None:
    """Seconds until ``check`` holds, or None after ``timeout``."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if await check():
            return time.monotonic() - t0
        await asyncio.sleep(step)
    return None


async def _luma(group: PeerGroup) -> float | None:
    rep = (await group.report())[0]
    luma = rep.get("luma") or []
    return float(luma[-1][1]) if luma else None


async def fanout(harness: Harness) -> dict[str, Any]:
    pub = await harness.add("publisher", site="host", is_host=True)
    await harness.wait_connected(pub)
    groups = [await harness.add("light", 10, site="commune-") for _ in range(2)]
    for g in groups:
        await harness.wait_connected(g)
    host = harness.sfu.room(harness.room).host()
    assert host is not None
    outs = [p.outputs for p in harness.sfu.room(harness.room).peers.values() if not p.is_host]
    before = [r for g in groups for r in await g.report()]
    sent0 = [(o["video"].packer.packed, o["audio"].packer.packed) for o in outs]
    v0, a0, t0 = host.sources["video"].frames, host.sources["audio"].frames, time.monotonic()
    await asyncio.sleep(4.0)
    v1, a1, t1 = host.sources["video"].frames, host.sources["audio"].frames, time.monotonic()
    sent1 = [(o["video"].packer.packed, o["audio"].packer.packed) for o in outs]
    after = [r for g in groups for r in await g.report()]
    subs = [
        {
            "peer": a["peer"],
            "fps": (a["video_frames"] - b["video_frames"]) / (a["now"] - b["now"]),
            "audio_pps": (a["audio_packets"] - b["audio_packets"]) / (a["now"] - b["now"]),
            "video_loss": 1
            - (a["video_received"] - b["video_received"]) / max(1, a["video_expected"] - b["video_expected"]),
        }
        for a, b in zip(after, before, strict=True)
    ]
    sfu_side = [
        {"video": (s1[0] - s0[0]) / max(1, v1 - v0), "audio": (s1[1] - s0[1]) / max(1, a1 - a0)}
        for s0, s1 in zip(sent0, sent1, strict=True)
    ]
    return {
        "subscribers": subs,
        "sent_over_received": sfu_side,
        "publisher_fps": (v1 - v0) / (t1 - t0),
        "publisher_audio_pps": (a1 - a0) / (t1 - t0),
        "codecs": _codec_doc(harness.sfu),
        # packets each subscriber's senders put straight on the UDP socket (passthrough's fast path)
        "direct_packets": [{k: o[k].packer.direct_packets for k in ("video", "audio")} for o in outs],
    }


async def floor(harness: Harness) -> dict[str, Any]:
    sfu = harness.sfu
    host = await harness.add("publisher", site="host", is_host=True, extra=["--luma", "40"])
    site = await harness.add("site", site="xa-a", extra=["--luma", "210"])
    probe = await harness.add("probe", site="xa-b")
    for g in (host, site, probe):
        await harness.wait_connected(g)
    out: dict[str, Any] = {}

    async def probe_sees(lo: float, hi: float) -> bool:
        v = await _luma(probe)
        return v is not None and lo <= v <= hi

    out["host_seen_s"] = await _until(lambda: probe_sees(20, 90), 5)
    out["site_frames_before_grant"] = _published(sfu, harness.room, "xa-a")
    sfu.grant_floor(harness.room, "xa-a")
    out["site_seen_after_grant_s"] = await _until(lambda: probe_sees(170, 255), 5)

    async def site_sees_host() -> bool:
        v = await _luma(site)
        return v is not None and 20 <= v <= 90

    out["holder_sees_host_s"] = await _until(site_sees_host, 5)
    out["site_frames_during_floor"] = _published(sfu, harness.room, "xa-a")
    sfu.revoke_floor(harness.room)
    out["host_seen_after_revoke_s"] = await _until(lambda: probe_sees(20, 90), 5)
    await asyncio.sleep(1.0)
    frames_at_revoke = _published(sfu, harness.room, "xa-a")
    await asyncio.sleep(1.5)
    out["site_frames_after_revoke_delta"] = _published(sfu, harness.room, "xa-a") - frames_at_revoke
    out["site_messages"] = [e["message"] for e in site.events if e.get("event") == "message"]
    out["codecs"] = _codec_doc(sfu)
    return out


def _published(sfu: Sfu, room: str, site: str) -> int:
    peer = sfu.room(room).by_site(site)
    assert peer is not None
    return sum(s.frames for k, s in peer.sources.items() if k == "video")


async def late_joiner(harness: Harness) -> dict[str, Any]:
    pub = await harness.add("publisher", site="host", is_host=True)
    await harness.wait_connected(pub)
    early = await harness.add("light", 2, site="early-")
    await harness.wait_connected(early)
    await asyncio.sleep(3.0)
    host_peer = harness.sfu.room(harness.room).host()
    assert host_peer is not None
    requests_before = host_peer.sources["video"].keyframe_requests
    keyframes_before = host_peer.sources["video"].keyframes
    primed_before = host_peer.sources["video"].primed
    probe = await harness.add("probe", site="late")
    await harness.wait_connected(probe)
    await _until(lambda: _has_first(probe), 5)
    rep = (await probe.report())[0]
    return {
        "first_frame_after_connect_s": rep["first_frame_after_connect_s"],
        "first_frame_after_offer_s": rep["first_frame_after_offer_s"],
        "connect_s": rep["connect_s"],
        "keyframe_requests_delta": host_peer.sources["video"].keyframe_requests - requests_before,
        "keyframes_delta": host_peer.sources["video"].keyframes - keyframes_before,
        "started_from_cache": host_peer.sources["video"].primed - primed_before,
        "codecs": _codec_doc(harness.sfu),
    }


async def join_burst(harness: Harness) -> dict[str, Any]:
    """Sites joining right after one another start from the cached picture group, with no keyframe request each.

    The cache is made long here (and the queues large enough for it) so that the burst's ICE + DTLS, slow on a
    loaded machine, cannot outlast it: the assertions are about what the SFU does, not about how fast it is.
    """
    harness.sfu.config.gop_cache_s = 60.0
    harness.sfu.config.queue_frames = 1024
    pub = await harness.add("publisher", site="host", is_host=True)
    await harness.wait_connected(pub)
    first = await harness.add("probe", site="first")
    await harness.wait_connected(first)
    await _until(lambda: _has_first(first), 5)
    video = harness.sfu.room(harness.room).host()
    assert video is not None
    source = video.sources["video"]
    requests_before, keyframes_before, primed_before = source.keyframe_requests, source.keyframes, source.primed
    burst = await harness.add("light", 6, site="burst-")
    probe = await harness.add("probe", site="burst-probe")
    await harness.wait_connected(burst)
    await harness.wait_connected(probe)
    await _until(lambda: _has_first(probe), 5)
    await asyncio.sleep(1.0)
    light = await burst.report()
    rep = (await probe.report())[0]
    return {
        "keyframe_requests_delta": source.keyframe_requests - requests_before,
        "keyframes_delta": source.keyframes - keyframes_before,
        "started_from_cache": source.primed - primed_before,
        "probe_first_frame_after_connect_s": rep["first_frame_after_connect_s"],
        "probe_decoded_video": rep["decoded"].get("video", 0),
        "light_video_frames": [r["video_frames"] for r in light],
        "codecs": _codec_doc(harness.sfu),
    }


async def _has_first(group: PeerGroup) -> bool:
    return (await group.report())[0].get("first_frame_after_connect_s") is not None


def _loss(if_a: str, pct: int, on: bool) -> str:
    """30 % loss on the SFU's egress to the other namespace: tc netem if the kernel has it, else iptables."""
    if on:
        cp = subprocess.run(["tc", "qdisc", "replace", "dev", if_a, "root", "netem", "loss", f"{pct}%"],
                            capture_output=True)
        if cp.returncode == 0:
            return "netem"
        ipt = shutil.which("iptables-legacy") or "iptables"
        subprocess.run([ipt, "-A", "OUTPUT", "-o", if_a, "-p", "udp", "-m", "statistic", "--mode", "random",
                        "--probability", f"{pct / 100:.2f}", "-j", "DROP"], check=True)
        return "iptables-statistic"
    subprocess.run(["tc", "qdisc", "del", "dev", if_a, "root"], capture_output=True)
    ipt = shutil.which("iptables-legacy") or "iptables"
    subprocess.run([ipt, "-F", "OUTPUT"], capture_output=True)
    return "off"


async def lossy(harness: Harness) -> dict[str, Any]:
    ns_b, if_a = os.environ["LTM_NS_B"], os.environ["LTM_IF_A"]
    sfu = harness.sfu
    pub = await harness.add("publisher", site="host", is_host=True)
    await harness.wait_connected(pub)
    probe = await harness.add("probe", site="xa-lossy", prefix_cmd=["ip", "netns", "exec", ns_b])
    await harness.wait_connected(probe)
    await _until(lambda: _has_first(probe), 5)
    peer = sfu.room(harness.room).by_site("xa-lossy")
    assert peer is not None
    out: dict[str, Any] = {"method": _loss(if_a, 30, True)}
    t_loss = time.monotonic()

    async def audio_only() -> bool:
        return peer.video_mode == "audio-only"

    out["audio_only_after_s"] = await _until(audio_only, 15)
    host = sfu.room(harness.room).host()
    assert host is not None
    r1 = (await probe.report())[0]
    s1, h1 = peer.outputs["audio"].packer.packed, host.sources["audio"].frames
    await asyncio.sleep(3.0)
    s2, h2 = peer.outputs["audio"].packer.packed, host.sources["audio"].frames
    r2 = (await probe.report())[0]
    out["audio_sent_over_received_during_audio_only"] = (s2 - s1) / max(1, h2 - h1)
    out["audio_decoded_during_audio_only"] = r2["decoded"]["audio"] - r1["decoded"]["audio"]
    out["video_decoded_during_audio_only"] = r2["decoded"]["video"] - r1["decoded"]["video"]
    out["loss_seen"] = peer.last_loss
    _loss(if_a, 30, False)
    out["loss_on_s"] = time.monotonic() - t_loss

    async def full() -> bool:
        return peer.video_mode == "full"

    out["video_back_after_s"] = await _until(full, 15)
    await asyncio.sleep(1.0)  # a keyframe round trip, then measure the steady rate
    src = sfu.room(harness.room).host()
    assert src is not None
    r3, f3, t3 = (await probe.report())[0], src.sources["video"].frames, time.monotonic()
    await asyncio.sleep(2.0)
    r4, f4, t4 = (await probe.report())[0], src.sources["video"].frames, time.monotonic()
    out["video_fps_after_recovery"] = (r4["decoded"]["video"] - r3["decoded"]["video"]) / (r4["now"] - r3["now"])
    out["publisher_fps"] = (f4 - f3) / (t4 - t3)
    out["messages"] = [e["message"] for e in probe.events if e.get("event") == "message"]
    out["codecs"] = _codec_doc(sfu)
    out["stats"] = sfu.stats(harness.room)
    return out


async def cascade(harness: Harness) -> dict[str, Any]:
    """Primary SFU (publisher) -> relay -> worker SFU (subscribers): how one host spreads subscribers over workers."""
    primary = harness.sfu
    # no cached picture groups here: this scenario shows the keyframe REQUEST path across the relay
    primary.config.gop_cache_s = 0
    worker = Sfu(SfuConfig(gop_cache_s=0))
    await worker.start()
    downstream = Harness(worker, room=harness.room)
    try:
        pub = await harness.add("publisher", site="host", is_host=True)
        await harness.wait_connected(pub)
        relay_peer, offer = await primary.relay_offer(harness.room, "w1")
        _, answer = await worker.join(harness.room, "upstream", offer, is_host=True)
        await primary.relay_answer(harness.room, relay_peer, answer)
        subs = await downstream.add("light", 6, site="w1-")
        await downstream.wait_connected(subs)
        await asyncio.sleep(1.0)
        host = primary.room(harness.room).host()
        assert host is not None
        r0, f0, t0 = await subs.report(), host.sources["video"].frames, time.monotonic()
        await asyncio.sleep(3.0)
        r1, f1, t1 = await subs.report(), host.sources["video"].frames, time.monotonic()
        fps = [(a["video_frames"] - b["video_frames"]) / (a["now"] - b["now"]) for a, b in zip(r1, r0, strict=True)]
        probe = await downstream.add("probe", site="w1-late")
        await downstream.wait_connected(probe)
        await _until(lambda: _has_first(probe), 5)
        rep = (await probe.report())[0]
        return {
            "fps": fps,
            "publisher_fps": (f1 - f0) / (t1 - t0),
            "first_frame_after_connect_s": rep["first_frame_after_connect_s"],
            "primary_keyframe_requests": host.sources["video"].keyframe_requests,
            "codecs": _codec_doc(primary),
            "worker_packers_opened": _codec_doc(worker)["packer_contexts_opened"],
        }
    finally:
        await downstream.close()
        await worker.stop()


async def worker_process(harness: Harness) -> dict[str, Any]:
    """Subscribers signed on to a separate SFU worker process fed over a relay by this (primary) SFU."""
    pub = await harness.add("publisher", site="host", is_host=True)
    await harness.wait_connected(pub)
    worker = await harness.add_worker()
    subs = await harness.add("light", 4, site="w-", worker=worker)
    await harness.wait_connected(subs)
    await asyncio.sleep(1.0)
    host = harness.sfu.room(harness.room).host()
    assert host is not None
    r0, f0, t0 = await subs.report(), host.sources["video"].frames, time.monotonic()
    await asyncio.sleep(3.0)
    r1, f1, t1 = await subs.report(), host.sources["video"].frames, time.monotonic()
    stats = await worker.stats()
    return {
        "fps": [(a["video_frames"] - b["video_frames"]) / (a["now"] - b["now"]) for a, b in zip(r1, r0, strict=True)],
        "publisher_fps": (f1 - f0) / (t1 - t0),
        "worker_peers": [p["site"] for p in stats["rooms"][harness.room]["peers"]],
        "primary_peers": [p.site_id for p in harness.sfu.room(harness.room).peers.values()],
        "codecs": _codec_doc(harness.sfu),
    }


SCENARIOS = {
    "fanout": fanout,
    "floor": floor,
    "late_joiner": late_joiner,
    "join_burst": join_burst,
    "lossy": lossy,
    "cascade": cascade,
    "worker_process": worker_process,
}


async def _run(name: str) -> dict[str, Any]:
    _count_codecs()
    sfu = Sfu(SfuConfig())
    await sfu.start()
    harness = Harness(sfu)
    try:
        return await SCENARIOS[name](harness)
    finally:
        await harness.close()
        await sfu.stop()


def main() -> None:
    result = asyncio.run(_run(sys.argv[1]))
    sys.stdout.write(json.dumps(result, default=str) + "\n")


if __name__ == "__main__":
    main()
