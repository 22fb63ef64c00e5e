"""Room agents on the lab: the server on the province server's host, agents in the communes' room-PC hosts.

Routers deployed (as tests/devices does), ``meeting serve`` in the province server's namespace at the
inventory's meeting-server address, agents in the room PCs' host namespaces (``ip netns exec``: they see the
machine's /usr and this checkout). The small profile has 4 room PCs, so each runs several agents with distinct
commune ids of its district to reach 10 communes (plus the host hall's agent on the province server host).
One module, one lab, one sequence: join at start → a commune's WAN cut for 10 s → server killed and restarted
→ a revoked token.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftool.inventory import load
from meeting.agent.runner import HOST_LEAD_S
from tests.agent.helpers import REPO, AgentProc, Server, create_meeting, prepare_db, revoke, site_tokens
from tests.lab.fixtures import LabSession

pytestmark = pytest.mark.lab

HOST = "11"
N_COMMUNES = 10


@dataclass
class LabWorld:
    lab: LabSession
    db_url: str
    server: Server
    dir: Path
    placement: dict[str, tuple[str, str]]  # commune site -> (namespace, room PC's own site)


def _deploy(lab: LabSession) -> None:
    cp = lab.cli("deploy", "--apply", "--json", timeout=400)
    doc = json.loads(cp.stdout) if cp.stdout.strip() else {}
    assert cp.returncode == 0, (cp.stdout[-2000:], cp.stderr[-2000:])
    assert doc.get("summary", {}).get("failed", 0) == 0, doc.get("summary")


@pytest.fixture(scope="module")
def world(lab_session: LabSession) -> Iterator[LabWorld]:
    if lab_session.is_up:
        lab_session.down()
    lab_session.up()
    # The lab's hosts have a private /tmp: the DB and token files live in the checkout's build/ (gitignored).
    work = REPO / "build" / f"agent-lab-{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    server: Server | None = None
    try:
        _deploy(lab_session)
        nodes = [n for n in lab_session.status()["nodes"] if n["role"] == "host"]
        servers = [n for n in nodes if n.get("device_role") == "server"]
        assert servers, nodes
        pcs = sorted((n for n in nodes if n.get("device_role") == "meeting-endpoint"), key=lambda n: n["site"])
        inv = load(REPO / "inventory" / "dien-bien")
        placement: dict[str, tuple[str, str]] = {}
        for i in range(N_COMMUNES):  # round-robin over the room PCs: their own site first, then its neighbours
            pc = pcs[i % len(pcs)]
            own = pc["site"]
            district = inv.parent(inv.get(own))
            neighbours = [s.id for s in inv.children(district.id)] if district else []
            pool = [own, *neighbours, *(s.id for s in inv.by_level("commune"))]
            free = [s for s in pool if s not in placement]
            assert free, (own, pool)
            site = free[0]
            placement[site] = (pc["namespace"], own)
        db_url = f"sqlite:///{work / 'meeting.db'}"
        prepare_db(db_url, REPO / "inventory" / "dien-bien")
        server = Server(servers[0]["namespace"], str(inv.services.meeting_server), 8000, db_url, work / "server.log")
        server.start(timeout=60)
        yield LabWorld(lab_session, db_url, server, work, placement)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
        lab_session.down()


@pytest.mark.timeout(2400)  # the lab lock may be held by another test process for a while
def test_agents_on_the_lab(world: LabWorld) -> None:
    sites = list(world.placement)
    tokens = site_tokens(world.db_url, [HOST, *sites], world.dir)
    meeting_id, start = create_meeting(world.db_url, [HOST, *sites], start_in_s=20, minutes=10)
    start_mono = time.monotonic() + (start.timestamp() - time.time())
    config = world.dir / "agent.yml"
    config.write_text("heartbeat_s: 5\n")  # so the revoked token is noticed within seconds
    agents: dict[str, AgentProc] = {}
    try:
        agents[HOST] = AgentProc.start(world.server.ns, HOST, world.server.url, tokens[HOST], "--config", str(config))
        for site, (ns, _) in world.placement.items():
            agents[site] = AgentProc.start(ns, site, world.server.url, tokens[site], "--config", str(config))

        # 1. 10 communes join at the start time by themselves
        for site, a in agents.items():
            at, ev = a.wait("connected", timeout=60)
            assert ev["meeting"] == meeting_id
            assert at >= start_mono - (HOST_LEAD_S if site == HOST else 0) - 0.5, (site, at - start_mono)
        for site in sites:
            agents[site].wait("receiving", timeout=20)
        late = {s: round(agents[s].wait("receiving")[0] - start_mono, 2) for s in sites}
        print("receiving after start (s):", late)
        assert max(late.values()) <= 10, late

        # 2. one room PC's WAN (TSLCD and Internet) is cut for 10 s: its agents are back ≤ 5 s after it returns
        ns, cut_site = world.placement[sites[0]]
        cut_agents = [s for s, (n, _) in world.placement.items() if n == ns]
        for link in ("dedicated", "internet"):
            world.lab.cli("lab", "fault", cut_site, "--link", link, "--down", timeout=60)
        time.sleep(10)
        for link in ("dedicated", "internet"):
            world.lab.cli("lab", "fault", cut_site, "--link", link, "--up", timeout=60)
        back = time.monotonic()
        for site in cut_agents:
            at, _ = agents[site].wait("receiving", after=back - 0.5, timeout=15)
            print(f"{site}: receiving {at - back:.2f} s after the link came back")
            assert at - back <= 5.0, (site, at - back)

        # 3. the server is killed and restarted mid-meeting: every agent is back ≤ 10 s later
        killed = time.monotonic()
        world.server.kill()
        world.server.start(timeout=60)
        for site, a in agents.items():
            at, _ = a.wait("connected", after=killed, timeout=20)
            assert at - killed <= 10.0, (site, at - killed)
        print(f"all {len(agents)} agents reconnected ≤ 10 s after the kill")

        # 4. a revoked token stops its agent with a clear message (exit 3)
        victim = sites[-1]
        revoke(world.db_url, victim)
        agents[victim].proc.wait(30)  # its next heartbeat
        assert agents[victim].proc.returncode == 3
        assert "revoked, or the site is unknown" in "\n".join(agents[victim].stderr)
    finally:
        for a in agents.values():
            a.stop()
