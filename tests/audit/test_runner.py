"""The runner: a dead device costs at most its timeout and never stalls the others; failures become findings.

Devices here point at loopback listeners of this test (a silent TCP server, a closed port): nothing leaves
the machine.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftool.audit import registry
from conftool.audit.results import Status
from conftool.audit.rules import load_rules
from conftool.audit.runner import Auditor, Target
from conftool.inventory import load


@pytest.fixture
def silent_port() -> Iterator[int]:
    """Accepts TCP connections and never says a word (a hung sshd)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    conns: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conns.append(srv.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        yield int(srv.getsockname()[1])
    finally:
        stop.set()
        t.join()
        for c in conns:
            c.close()
        srv.close()


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


def test_dead_site_costs_at_most_its_timeout(reference_inventory: Path, silent_port: int, state_dir: Path) -> None:
    inv = load(reference_inventory)
    sel = inv.select(["03148", "03151", "03124"])
    hung, refused, slow = (sel.get(i).router for i in ("03148", "03151", "03124"))
    assert hung and refused and slow
    for dev, port, timeout in ((hung, silent_port, 2.0), (refused, _closed_port(), 2.0),
                               (slow, silent_port, 4.0)):
        dev.mgmt_address = "127.0.0.1"  # type: ignore[assignment]
        dev.port = port
        dev.timeout_s = timeout
        dev.credentials = None
    done: dict[str, float] = {}
    t0 = time.monotonic()
    auditor = Auditor(inv=inv, selection=sel, checks=registry.get(["device", "drift", "compliance"]),
                      rules=load_rules(None), target=Target("direct"), selector="test",
                      on_site=lambda s, _: done.__setitem__(s.id, time.monotonic() - t0))
    run = auditor.run_sync()
    wall = time.monotonic() - t0
    by = {(f.site, f.check, f.kind): f for f in run.findings}
    for site in ("03148", "03151", "03124"):
        assert by[(site, "device", "ssh")].status == Status.ERROR
        assert by[(site, "drift", "config")].status == Status.SKIPPED
        assert by[(site, "drift", "config")].detail == "device unreachable"
        assert by[(site, "compliance", "rules")].status == Status.SKIPPED
        # exactly one failed/errored finding per dead device
        assert sum(f.status in (Status.FAIL, Status.ERROR) for f in run.findings if f.site == site) == 1
    assert done["03151"] < 1.5, "a refused connection is reported at once"
    assert done["03148"] < 2.0 + 1.0, "the hung device costs its 2 s timeout, not more"
    assert wall < 4.0 + 1.5, "sites run concurrently: the run costs the longest timeout"


def test_unknown_check_is_a_usage_error() -> None:
    from conftool.audit.errors import AuditError

    with pytest.raises(AuditError, match="unknown check nope"):
        registry.get(["reachability,nope"])
    assert [c.name for c in registry.get(["drift", "device"])] == ["device", "drift"]
    assert registry.names() == ["reachability", "device", "drift", "compliance", "hosts"]
