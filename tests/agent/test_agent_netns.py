"""Room agents against the real meeting service, in a namespace pair of ours (no lab needed).

The server and the host hall's agent sit in ``lt-media-test-<pid>`` (10.99.0.1), the commune agents behind the
veth in ``…-b`` (10.99.0.2), so their link can be cut without touching anything else. The lab version (routers,
the province server and the room PCs' host namespaces) is tests/agent/test_agent_lab.py.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from meeting.agent.runner import HOST_LEAD_S
from tests.agent.helpers import AgentProc, Server, create_meeting, prepare_db, revoke, site_tokens
from tests.media.conftest import MediaNetns

SITES = ["03160", "03163", "03166"]  # communes of Mường Nhé (district 096)
HOST = "11"


@dataclass
class World:
    net: MediaNetns
    db_url: str
    server: Server
    tokens: dict[str, Path]
    dir: Path

    def agent(self, site: str, *extra: str, ns: str | None = None) -> AgentProc:
        netns = ns or (self.net.ns if site == HOST else self.net.ns_b)
        return AgentProc.start(netns, site, self.server.url, self.tokens[site], *extra)


@pytest.fixture
def world(agent_netns: MediaNetns, tmp_path: Path, reference_inventory: Path) -> Iterator[World]:
    db_url = f"sqlite:///{tmp_path / 'meeting.db'}"
    prepare_db(db_url, reference_inventory)
    tokens = site_tokens(db_url, [HOST, *SITES], tmp_path)
    server = Server(agent_netns.ns, agent_netns.addr_a, 8000, db_url, tmp_path / "server.log")
    server.start()
    agents: list[AgentProc] = []
    w = World(agent_netns, db_url, server, tokens, tmp_path)
    original = w.agent

    def tracked(site: str, *extra: str, ns: str | None = None) -> AgentProc:
        a = original(site, *extra, ns=ns)
        agents.append(a)
        return a

    w.agent = tracked  # type: ignore[method-assign]
    try:
        yield w
    finally:
        for a in agents:
            a.stop()
        server.stop()
        _link(agent_netns, True)


def _link(net: MediaNetns, up: bool) -> None:
    if_b = net.if_a[:-1] + "b"
    subprocess.run(["ip", "-n", net.ns_b, "link", "set", if_b, "up" if up else "down"], check=True)


def test_agents_join_at_start_and_come_back_after_a_cut_and_a_server_restart(world: World) -> None:
    meeting_id, start = create_meeting(world.db_url, [HOST, *SITES], start_in_s=8, minutes=5)
    start_mono = time.monotonic() + (start.timestamp() - time.time())
    agents = {s: world.agent(s, "--once") for s in [HOST, *SITES]}

    # 1. nobody presses anything: each agent joins at the start time, not before, and receives the host hall
    for site, a in agents.items():
        at, ev = a.wait("connected", timeout=30)
        assert ev["meeting"] == meeting_id
        # communes: not before the start, "soon" after it (10 s: this 2-core machine is shared with other test runs);
        # the host hall opens up to HOST_LEAD_S early so its picture is there when the communes arrive
        earliest = start_mono - (HOST_LEAD_S if site == HOST else 0) - 0.5
        assert earliest <= at <= start_mono + 10, (site, at - start_mono)
        assert ev["host"] is (site == HOST)
    for site in SITES:
        at, _ = agents[site].wait("receiving", timeout=15)
        assert at <= start_mono + 10, (site, at - start_mono)

    # 2. the communes' link is cut for 10 s: each one is back, receiving, within 5 s of the link returning
    _link(world.net, False)
    time.sleep(10)
    _link(world.net, True)
    back = time.monotonic()
    for site in SITES:
        agents[site].wait("dropped", after=back - 10.5, timeout=1)  # the cut was noticed
        at, _ = agents[site].wait("receiving", after=back, timeout=10)
        assert at - back <= 5.0, (site, at - back)
        print(f"site {site}: receiving again {at - back:.2f} s after the link returned")

    # 3. the server is killed mid-meeting and restarted: every agent is back within 10 s
    killed = time.monotonic()
    world.server.kill()
    world.server.start()
    restarted = time.monotonic()
    for site, a in agents.items():
        at, _ = a.wait("connected", after=restarted, timeout=15)
        assert at - killed <= 10.0, (site, at - killed, restarted - killed)
    for site in SITES:
        at, _ = agents[site].wait("receiving", after=restarted, timeout=10)
        assert at - killed <= 10.0, (site, at - killed)
        print(f"site {site}: receiving again {at - killed:.2f} s after the kill ({restarted - killed:.2f} s restart)")


def test_a_revoked_token_or_unknown_site_stops_the_agent_clearly(world: World) -> None:
    config = world.dir / "agent.yml"
    config.write_text("heartbeat_s: 1\n")
    a = world.agent(SITES[0], "--config", str(config))
    a.wait("started", timeout=20)
    revoke(world.db_url, SITES[0])
    assert a.proc.wait(15) == 3
    text = "\n".join(a.stderr)
    assert "revoked, or the site is unknown" in text and f"meeting sites token {SITES[0]}" in text
    assert "Traceback" not in text

    fake = world.dir / "fake-token"
    fake.write_text("lts_" + "A" * 43)
    fake.chmod(0o600)
    b = AgentProc.start(world.net.ns_b, SITES[1], world.server.url, fake)
    assert b.proc.wait(20) == 3
    assert "Traceback" not in "\n".join(b.stderr)

    # the token of another site: a configuration mistake (exit 2), not a revoked token
    c = AgentProc.start(world.net.ns_b, SITES[1], world.server.url, world.tokens[SITES[2]])
    assert c.proc.wait(20) == 2
    assert f"belongs to site {SITES[2]}" in "\n".join(c.stderr)
