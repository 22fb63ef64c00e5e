"""Host facts: the exec script runs under a real `sh`, its sections and `chronyc -n tracking` parse, and each
state of time sync and of the room agent gets the right verdict (skipped names the playbook that fixes it).

The two tracking captures follow chrony's documented `chronyc tracking` output (the synced one is the example of
chronyc(1)); the lab test (test_lab_audit.py) reads a real chronyd inside a lab host.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftool.audit.checks.hosts import host_findings
from conftool.audit.hostfacts import MARK, SCRIPT, HostFacts, HostParseError, Tracking, parse, parse_tracking, sections
from conftool.audit.results import Status
from conftool.inventory import Device

DATA = Path(__file__).parent / "data"
NTP = ["10.11.0.11"]
PC = Device(hostname="pc-song-da", platform="linux", role="meeting-endpoint", mgmt_address="10.250.0.39")
SRV = Device(hostname="srv-dien-bien", platform="linux", role="server", mgmt_address="10.250.0.17")


def answer(**sec: str) -> str:
    return "".join(f"\n{MARK}{k.replace('_', '-')}\n{v}\n" for k, v in {**sec, "end": ""}.items())


def test_tracking_synced_and_unsynced() -> None:
    t = parse_tracking((DATA / "chronyc-tracking-synced.txt").read_text())
    assert t == Tracking(reference="203.0.113.15", stratum=3, offset_s=-0.000006523, leap="Normal") and t.synced
    u = parse_tracking((DATA / "chronyc-tracking-unsynced.txt").read_text())
    assert u.leap == "Not synchronised" and not u.synced and u.reference == "00000000"


def test_tracking_garbage_is_a_parse_error() -> None:
    with pytest.raises(HostParseError, match="not understood"):
        parse_tracking("506 Cannot talk to daemon")


def test_script_runs_under_sh_and_parses(tmp_path: Path) -> None:
    """The real script under dash on this machine: every section is there, whatever is installed here."""
    cp = subprocess.run(["sh", "-c", SCRIPT], capture_output=True, text=True, timeout=30)
    sec = sections(cp.stdout)
    assert {"chrony-config", "agent-installed", "agent-pidfile", "agent-cmdline", "end"} <= set(sec)
    assert ("chronyc" in sec) != ("chronyc-missing" in sec)
    hf = parse("x", "h", cp.stdout)
    assert hf.chronyc in ("missing", "answered", "no-daemon")


def test_cut_answer_is_a_parse_error() -> None:
    with pytest.raises(HostParseError, match="incomplete"):
        sections(f"{MARK}chronyc\nReference ID : x\n")


def verdicts(text: str, dev: Device = PC) -> dict[str, tuple[Status, str]]:
    hf = parse("03148", dev.hostname, text)
    return {f.kind: (f.status, f.detail) for f in host_findings(hf, dev, "03148", NTP, "medium")}


SYNCED = (DATA / "chronyc-tracking-synced.txt").read_text().replace("203.0.113.15", "10.11.0.11")
NO_DAEMON = dict(chronyc="506 Cannot talk to daemon", chronyc_rc="1")


@pytest.mark.parametrize(("sec", "time", "words"), [
    (dict(chronyc_missing=""), Status.SKIPPED, "conftool play baseline"),
    ({**NO_DAEMON, "chrony_config": "pool 2.debian.pool.ntp.org iburst"}, Status.SKIPPED, "conftool play baseline"),
    ({**NO_DAEMON, "chrony_config": "server 10.11.0.11 iburst"}, Status.FAIL, "chronyd is not running"),
    (dict(chronyc=SYNCED, chronyc_rc="0"), Status.OK, "in sync with 10.11.0.11"),
    (dict(chronyc=(DATA / "chronyc-tracking-unsynced.txt").read_text(), chronyc_rc="0"), Status.FAIL,
     "not synchronised"),
    (dict(chronyc=SYNCED.replace("0.000006523 seconds slow", "0.250000000 seconds fast"), chronyc_rc="0"),
     Status.FAIL, "offset +250.0 ms > 100 ms"),
    (dict(chronyc="Leap status : Normal", chronyc_rc="0"), Status.ERROR, "not understood"),
])
def test_time_verdicts(sec: dict[str, str], time: Status, words: str) -> None:
    status, detail = verdicts(answer(**sec))["time"]
    assert status == time and words in detail, detail


@pytest.mark.parametrize(("sec", "agent", "words"), [
    ({}, Status.SKIPPED, "conftool play meeting-endpoint"),
    (dict(agent_installed="/etc/lienthong/agent.yml"), Status.FAIL, "supervisor is not running"),
    (dict(agent_installed="/etc/lienthong/agent.yml", agent_pidfile="4242"), Status.FAIL, "4242"),
    (dict(agent_pidfile="4242", agent_cmdline="/usr/bin/sleep 1000"), Status.FAIL, "not the meeting agent"),
    (dict(agent_installed="/etc/lienthong/agent.yml", agent_pidfile="4242\n",
          agent_cmdline="/opt/lienthong/bin/python /opt/lienthong/bin/meeting agent --config /etc/lienthong/agent.yml"),
     Status.OK, "agent alive (pid 4242)"),
])
def test_agent_verdicts(sec: dict[str, str], agent: Status, words: str) -> None:
    status, detail = verdicts(answer(chronyc_missing="", **sec))["agent"]
    assert status == agent and words in detail, detail


def test_server_has_no_agent_item_and_unreachable_host_fails() -> None:
    assert set(verdicts(answer(chronyc_missing=""), SRV)) == {"ssh", "time"}
    hf = HostFacts(site="03148", hostname=PC.hostname, error="SSH to root@10.250.0.39:22 failed: refused")
    got = {f.kind: f for f in host_findings(hf, PC, "03148", NTP, "medium")}
    assert got["ssh"].status == Status.FAIL and "refused" in got["ssh"].detail
    assert got["time"].status == got["agent"].status == Status.SKIPPED
    assert got["time"].detail == "host unreachable"
