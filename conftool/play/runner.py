"""Run one playbook with ansible-runner over the exported inventory and collect per-host results.

Why ansible-runner and not our own SSH: engineers must recognise the playbooks as plain Ansible and AWX can run
the same ones (DESIGN §8); ansible-runner is the library AWX itself uses to run ansible-playbook and read its
event stream.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conftool.inventory import Device, Inventory, Site
from conftool.play.errors import PlayError
from conftool.play.events import EventCollector, HostProgress, HostResult
from conftool.play.export import export
from conftool.play.vaultpass import VaultPasswordServer

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
# Measured by bench/play.py on the full lab's 129 room PCs, this 2-core machine (docs/playbooks.md,
# "Performance"). Mitogen's strategy keeps one Python interpreter per host over the SSH connection and runs each
# module inside it: no Python start, module zip and temp files per task — on the same hosts in the same minutes a
# no-change run took 10 s instead of 35 s (4 hosts), and 129 hosts took 374 s (first run 403 s), where plain
# Ansible was projected at ~21 min from slices. LIENTHONG_PLAY_STRATEGY=linear (PlayOptions.strategy) is the plain
# path; forks 5 vs 50 differed by 4 % (CPU-bound on 2 cores), 50 was the faster.
DEFAULT_FORKS = 50
DEFAULT_STRATEGY = "mitogen_linear"
STRATEGIES = ("mitogen_linear", "mitogen_free", "linear", "free")
STATUSES = ("ok", "changed", "failed", "unreachable")
# Environment variables that must never reach ansible-runner's recorded job environment.
ALWAYS_SCRUBBED = ("LIENTHONG_VAULT_PASSWORD",)


def playbooks_dir() -> Path:
    """LIENTHONG_PLAYBOOKS, else the repository's playbooks/ next to the package."""
    env = os.environ.get("LIENTHONG_PLAYBOOKS")
    return Path(env).expanduser() if env else REPO / "playbooks"


def available() -> list[str]:
    d = playbooks_dir()
    return sorted(p.stem for p in d.glob("*.yml") if p.stem != "lab-vars")


def find_playbook(name: str) -> Path:
    """A playbook by name (`baseline`, `meeting-endpoint.yml`) or by path."""
    p = Path(name).expanduser()
    if p.suffix in (".yml", ".yaml") and p.is_file():
        return p.resolve()
    stem = name[:-4] if name.endswith(".yml") else name
    cand = playbooks_dir() / f"{stem}.yml"
    if "/" not in name and cand.is_file() and stem != "lab-vars":
        return cand
    raise PlayError(f"playbook {name!r} not found: use one of {', '.join(available())} "
                    f"(in {playbooks_dir()}) or the path of a playbook file")


def default_strategy() -> str:
    """LIENTHONG_PLAY_STRATEGY (e.g. `linear`: plain Ansible, without mitogen), else DEFAULT_STRATEGY."""
    return os.environ.get("LIENTHONG_PLAY_STRATEGY") or DEFAULT_STRATEGY


@dataclass
class PlayOptions:
    check: bool = False
    diff: bool = False
    tags: list[str] = field(default_factory=list)
    skip_tags: list[str] = field(default_factory=list)
    forks: int = DEFAULT_FORKS
    strategy: str = field(default_factory=default_strategy)
    pipelining: bool = True
    fact_cache: bool = True  # keep gathered facts between runs (gathering=smart)
    connect_timeout_s: int = 10
    secret_refs: dict[str, str] = field(default_factory=dict)
    job_timeout_s: int = 3600


@dataclass
class PlayReport:
    playbook: str
    results: list[HostResult]
    rc: int
    runner_status: str
    elapsed_s: float
    check: bool = False
    errors: list[str] = field(default_factory=list)  # run-level errors (no host involved)
    task_seconds: list[tuple[str, float]] = field(default_factory=list)  # wall time per task (linear strategy)
    strategy: str = ""  # the Ansible strategy plugin the run used (mitogen_linear, linear, …): in --json

    @property
    def failed(self) -> bool:
        return bool(self.errors) or any(r.status in ("failed", "unreachable") for r in self.results)

    def summary(self) -> dict[str, Any]:
        counts = {s: sum(1 for r in self.results if r.status == s) for s in STATUSES}
        return {"playbook": self.playbook, "hosts": len(self.results), **counts, "check": self.check,
                "strategy": self.strategy, "elapsed_s": round(self.elapsed_s, 2), "errors": self.errors}


@contextlib.contextmanager
def _scrubbed_environ(names: set[str]) -> Iterator[None]:
    """ansible-runner copies os.environ into its job record: hide variables that hold secrets during the run."""
    saved = {n: os.environ.pop(n) for n in names if n in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def _cmdline(opts: PlayOptions) -> str:
    import shlex

    parts: list[str] = []
    if opts.check:
        parts.append("--check")
    if opts.diff:
        parts.append("--diff")
    if opts.tags:
        parts += ["--tags", ",".join(opts.tags)]
    if opts.skip_tags:
        parts += ["--skip-tags", ",".join(opts.skip_tags)]
    return " ".join(shlex.quote(p) for p in parts)


def _envvars(opts: PlayOptions, run_dir: Path, vault_client: Path, pb_dir: Path) -> dict[str, str]:
    cp_dir = run_dir / "cp"
    cp_dir.mkdir(mode=0o700)
    # ansible-playbook lives next to this interpreter (the venv), which need not be on PATH.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", os.defpath)])
    extra: dict[str, str] = {}
    if opts.strategy.startswith("mitogen_"):
        extra["ANSIBLE_STRATEGY_PLUGINS"] = str(_mitogen_strategy_dir())
    return {
        **extra,
        "PATH": path,
        "ANSIBLE_CONFIG": str(pb_dir / "ansible.cfg"),
        "ANSIBLE_ROLES_PATH": str(pb_dir / "roles"),
        "ANSIBLE_VAULT_PASSWORD_FILE": str(vault_client),
        "ANSIBLE_PIPELINING": str(opts.pipelining),
        "ANSIBLE_STRATEGY": opts.strategy,
        "ANSIBLE_GATHERING": "smart" if opts.fact_cache else "implicit",
        "ANSIBLE_TIMEOUT": str(opts.connect_timeout_s),
        "ANSIBLE_SSH_ARGS": "-o ControlMaster=auto -o ControlPersist=120s -o ServerAliveInterval=15 "
                            "-o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no -o LogLevel=ERROR",
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(cp_dir),
        "ANSIBLE_LOCAL_TEMP": str(run_dir / "tmp"),
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_DEPRECATION_WARNINGS": "False",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
    }


def _mitogen_strategy_dir() -> Path:
    """Where the mitogen package keeps its Ansible strategy plugins (mitogen_linear, mitogen_free)."""
    try:
        import ansible_mitogen  # type: ignore[import-untyped]
    except ImportError as e:
        raise PlayError("strategy mitogen_* needs the mitogen package (pip install mitogen)") from e
    return Path(ansible_mitogen.__file__).parent / "plugins" / "strategy"


def check_password_login(password_hosts: list[str], strategy: str) -> None:
    """Password logins (`env:`/`vault:` credentials) go through `sshpass` with Ansible's ssh connection: fail
    before the run with what to install, rather than with one "unreachable" per host. Mitogen types the
    password into ssh's prompt itself and needs no sshpass."""
    if not password_hosts or strategy.startswith("mitogen_") or shutil.which("sshpass"):
        return
    names = ", ".join(password_hosts[:5]) + (" …" if len(password_hosts) > 5 else "")
    raise PlayError(f"{len(password_hosts)} host(s) log in with a password ({names}) and the controller has no "
                    "sshpass: install it (scripts/apt-packages.txt, apt-get install sshpass) or use keyfile: "
                    "credentials")


def run_play(inv: Inventory, playbook: Path, hosts: list[tuple[Site, Device]], opts: PlayOptions, *,
             state_dir: Path, lab: bool, on_progress: Callable[[str, HostProgress], None] | None = None,
             keep_dir: Path | None = None) -> PlayReport:
    """Export, run, collect. The run directory (0700, under the state dir) is removed afterwards unless
    `keep_dir` asks for a copy (tests use it to prove no secret is left in clear)."""
    import ansible_runner  # type: ignore[import-untyped]

    if opts.strategy not in STRATEGIES:
        raise PlayError(f"strategy {opts.strategy!r} (LIENTHONG_PLAY_STRATEGY?) is not one of {', '.join(STRATEGIES)}")
    if not hosts:
        raise PlayError("no Linux host (meeting-room PC or server) in the selection: check --site")
    pb_dir = playbooks_dir()
    root = state_dir / "play"
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=root))
    run_dir.chmod(0o700)
    (run_dir / "tmp").mkdir(mode=0o700)
    started = time.monotonic()
    try:
        with VaultPasswordServer(run_dir) as vps:
            lab_vars = pb_dir / "lab-vars.yml" if lab else None
            exported = export(inv, hosts, run_dir / "inventory", vault_password=vps.password, state_dir=state_dir,
                              lab_vars=lab_vars, secret_refs=opts.secret_refs,
                              suite_vars={"lt_wheelhouse": str(REPO / ".wheelhouse"), "lt_repo": str(REPO)})
            check_password_login(exported.password_hosts, opts.strategy)
            collector = EventCollector(sites=exported.hosts, on_progress=on_progress)
            kwargs: dict[str, Any] = {
                "private_data_dir": str(run_dir),
                "project_dir": str(pb_dir),
                "playbook": str(playbook),
                "inventory": str(run_dir / "inventory"),
                "limit": ",".join(sorted(exported.hosts)),
                "forks": opts.forks,
                "cmdline": _cmdline(opts),
                "envvars": _envvars(opts, run_dir, vps.client, pb_dir),
                "event_handler": collector,
                "quiet": True,
                "ident": "run",
                "suppress_env_files": True,
                "settings": {"suppress_output_file": True, "suppress_ansible_output": True},
                "timeout": opts.job_timeout_s,
            }
            if opts.fact_cache:
                facts = root / "facts"
                facts.mkdir(exist_ok=True, mode=0o700)
                kwargs["fact_cache"] = str(facts)
            with _scrubbed_environ(exported.env_secrets | set(ALWAYS_SCRUBBED)):
                r = ansible_runner.run(**kwargs)
            rc = int(r.rc) if r.rc is not None else -1
            report = PlayReport(playbook=playbook.stem, results=collector.results(), rc=rc,
                                runner_status=str(r.status), elapsed_s=time.monotonic() - started,
                                check=opts.check, strategy=opts.strategy)
            ends = [t for _, t in collector.task_starts[1:]] + [time.monotonic()]
            report.task_seconds = [(name, round(end - t, 2)) for (name, t), end in zip(collector.task_starts, ends,
                                                                                        strict=True)]
            if collector.stats is None:
                tail = [ln for ln in collector.output_tail if ln.strip()]
                report.errors.append(f"ansible-playbook ended with rc={rc} ({r.status}) before any result"
                                     + (": " + " | ".join(tail[-4:]) if tail else ""))
            return report
    finally:
        if keep_dir is not None:
            shutil.copytree(run_dir, keep_dir, dirs_exist_ok=True, ignore_dangling_symlinks=True,
                            ignore=shutil.ignore_patterns("cp", "*.sock"))
        shutil.rmtree(run_dir, ignore_errors=True)
