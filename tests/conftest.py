"""Shared fixtures: a throwaway PostgreSQL cluster, database URLs for SQLite and PostgreSQL, isolated state dirs."""

from __future__ import annotations

import contextlib
import glob
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# The lab fixtures (one lab per test session, serialised across processes) serve every test tree.
pytest_plugins = ["tests.lab.fixtures"]


@pytest.fixture(scope="session", autouse=True)
def _agent_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Room agents started by tests (and their children) keep control sockets out of the machine's /run."""
    import os

    old = os.environ.get("LIENTHONG_RUN_DIR")
    os.environ["LIENTHONG_RUN_DIR"] = str(tmp_path_factory.mktemp("agent-run"))
    yield
    if old is None:
        os.environ.pop("LIENTHONG_RUN_DIR", None)
    else:
        os.environ["LIENTHONG_RUN_DIR"] = old

REPO = Path(__file__).resolve().parent.parent
REFERENCE_INVENTORY = REPO / "inventory" / "dien-bien"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.fail("PostgreSQL is not installed (Debian package postgresql): run scripts/install.sh")
    return Path(found[-1]).parent


class PgCluster:
    """A PostgreSQL cluster on a temp dir and a loopback port, run as the postgres user (initdb refuses root)."""

    def __init__(self) -> None:
        self.bin = _pg_bin()
        self.dir = Path(tempfile.mkdtemp(prefix="lt-pg-"))
        self.port = _free_port()
        self.data = self.dir / "data"
        self.started = False

    def _as_pg(self, *args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True, text=True)

    def start(self) -> None:
        shutil.chown(self.dir, "postgres", "postgres")
        self.dir.chmod(0o700)
        self._as_pg(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                    "-E", "UTF8", "--locale=C.UTF-8")
        self._as_pg(str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-l", str(self.dir / "log"),
                    "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
        self.started = True

    def stop(self) -> None:
        if self.started:
            with contextlib.suppress(subprocess.CalledProcessError):
                self._as_pg(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
            self.started = False
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self) -> str:
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """One throwaway cluster per test session, removed even when tests fail."""
    cluster = PgCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> str:
    """A fresh, empty PostgreSQL database for one test."""
    return pg_cluster.create_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Run a test on SQLite and on PostgreSQL alike (DESIGN §6)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'lienthong.db'}"
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    return cluster.create_database()


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated LIENTHONG_STATE so tests never touch the user's state."""
    d = tmp_path / "state"
    d.mkdir()
    monkeypatch.setenv("LIENTHONG_STATE", str(d))
    return d


@pytest.fixture(scope="session")
def reference_inventory() -> Path:
    return REFERENCE_INVENTORY
