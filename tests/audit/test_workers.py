"""Audit worker processes (opt-in, `LIENTHONG_AUDIT_PROCS`): real session functions run in a child process, results
come back per call, a dead worker fails its sessions as errors instead of hanging the run. The bench
(bench/audit.py) drives them against the full lab."""

from __future__ import annotations

import asyncio
import pickle
import socket
from pathlib import Path

import pytest

from conftool.audit.facts import parse_frr_interfaces, parse_frr_routes
from conftool.audit.workers import SessionPool, default_procs
from conftool.inventory import load

DATA = Path(__file__).parent / "data"


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()  # nothing listens there now: a connect is refused at once
    return port


def test_default_procs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LIENTHONG_AUDIT_PROCS", raising=False)
    assert default_procs(270) == 0  # threads in the audit's own process unless asked (docs/audit.md: why)
    monkeypatch.setenv("LIENTHONG_AUDIT_PROCS", "2")
    assert default_procs(270) == 2


def test_what_crosses_the_pipe_pickles(reference_inventory: Path) -> None:
    inv = load(reference_inventory)
    site = inv.get("03148")
    dev = site.routers[0]
    assert pickle.loads(pickle.dumps((site, dev))) == (site, dev)
    facts = (parse_frr_interfaces((DATA / "frr-show-interface.json").read_text()),
             parse_frr_routes((DATA / "frr-show-ip-route.json").read_text()))
    assert pickle.loads(pickle.dumps(facts)) == facts


def test_sessions_in_a_worker_process(reference_inventory: Path) -> None:
    """Real `facts.gather` and `hostfacts.gather_with` calls in two worker processes, against a refused port."""
    inv = load(reference_inventory)
    site = inv.get("03148")
    dev = site.routers[0]
    port = closed_port()
    params = {"device_type": "cisco_ios", "host": "127.0.0.1", "port": port, "username": "netops",
              "password": "", "conn_timeout": 3}

    async def go() -> list[object]:
        pool = SessionPool(2, 4)
        await pool.start()
        try:
            return list(await asyncio.gather(
                pool.call("facts", site, dev, params, ["interfaces"], 3.0),
                pool.call("host", site.id, "pc-x", {"hostname": "127.0.0.1", "port": port, "username": "root",
                                                    "timeout": 3, "password": "x"}, 3.0)))
        finally:
            await pool.close()

    dev_facts, host_facts = asyncio.run(go())
    assert dev_facts.hostname == dev.hostname and dev_facts.error and str(port) in dev_facts.error  # type: ignore[attr-defined]
    assert host_facts.hostname == "pc-x" and host_facts.error and "127.0.0.1" in host_facts.error  # type: ignore[attr-defined]


def test_a_dead_worker_fails_its_sessions() -> None:
    async def go() -> str:
        pool = SessionPool(1, 2)
        await pool.start()
        w = pool._workers[0]
        w.proc.kill()
        await w.proc.wait()
        try:
            await asyncio.wait_for(pool.call("host", "x", "pc-x", {}, 1.0), 10)
        except RuntimeError as exc:
            return str(exc)
        finally:
            await pool.close()
        return "no error"

    assert "worker" in asyncio.run(go())
