"""Mute is enforced by the SFU: a client that ignores the ``mute`` message is silent at the others anyway."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.media.conftest import REPO, MediaNetns


def test_a_muted_site_that_keeps_sending_is_not_forwarded(live_netns: MediaNetns) -> None:
    cp = subprocess.run(["ip", "netns", "exec", live_netns.ns, sys.executable, "-m", "tests.live.sfu_mute"],
                        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
                        timeout=120)
    lines = [ln for ln in cp.stdout.splitlines() if ln.startswith("{")]
    assert cp.returncode == 0 and lines, cp.stderr[-4000:]
    r = json.loads(lines[-1])
    print(r)
    assert r["before"]["audio"] > 50 and r["before"]["video"] > 10, r
    # muted: the publisher keeps sending audio, the SFU counts and drops it, the probe gets none; video still flows
    assert r["muted"]["sent_audio"] > 50 and r["muted"]["audio"] <= 2 and r["muted"]["video"] > 10, r
    assert r["dropped_at_sfu"] > 50, r
    assert r["unmuted"]["audio"] > 50, r
