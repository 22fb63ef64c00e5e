"""`conftool bootstrap`: install the suite's own services on a server with pyinfra.

Why pyinfra next to Ansible: the suite's servers are few and ours (meeting server, TURN, audit runner); a Python
deploy keeps their setup in the same language and repository as the services, and pyinfra's operations are
idempotent by construction — an operation compares facts with the wanted state and yields only the commands still
needed, so a second run yields nothing ("changed" = yielded something). On hosts without systemd (the lab) the
services run under the same supervisor the playbooks ship (playbooks/roles/lt_common/files/lt-supervise).
"""

from __future__ import annotations

import functools
import io
import logging
import shlex
import time
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conftool.inventory import Device, Inventory, Site, resolve
from conftool.play.errors import BootstrapError
from conftool.play.export import linux_hosts
from conftool.play.runner import REPO, playbooks_dir

logger = logging.getLogger(__name__)

ROLES = ("meeting-server", "turn", "audit-runner")
BIN = "/opt/lienthong/bin"
RUN = "/run/lienthong"
MEETING_PORT = 8000
TURN_PORT = 3478


@dataclass
class OpResult:
    name: str
    changed: bool
    success: bool
    error: str | None = None


@dataclass
class BootstrapReport:
    host: str
    site: str
    role: str
    ops: list[OpResult] = field(default_factory=list)
    elapsed_s: float = 0.0
    error: str | None = None

    @property
    def changed(self) -> int:
        return sum(1 for o in self.ops if o.changed)

    @property
    def status(self) -> str:
        if self.error or any(not o.success for o in self.ops):
            return "failed"
        return "changed" if self.changed else "ok"

    def item(self) -> dict[str, Any]:
        detail: dict[str, Any] = {"role": self.role, "operations": len(self.ops), "changed": self.changed,
                                  "changed_ops": [o.name for o in self.ops if o.changed],
                                  "elapsed_s": round(self.elapsed_s, 2)}
        failed = [f"{o.name}: {o.error or 'failed'}" for o in self.ops if not o.success]
        if self.error or failed:
            detail["error"] = self.error or "; ".join(failed)
        return {"site": self.site, "device": self.host, "kind": "bootstrap", "status": self.status,
                "detail": detail}


def find_host(inv: Inventory, name: str) -> tuple[Site, Device]:
    hosts = linux_hosts(inv)
    for s, d in hosts:
        if name in (d.hostname, str(d.mgmt_address)):
            return s, d
    known = ", ".join(d.hostname for s, d in hosts if d.role.value == "server") or "none"
    raise BootstrapError(f"--host {name!r} is no Linux host of the inventory (servers: {known}; room PCs are "
                         "pc-<slug>)")


# --- pyinfra facts and operations of our own --------------------------------------------------------------
@functools.cache
def _pyinfra_ops() -> tuple[Any, Any]:
    """Defined lazily: importing pyinfra costs ~0.3 s that `conftool play` and `--help` need not pay."""
    from pyinfra.api.facts import FactBase
    from pyinfra.api.operation import operation
    from pyinfra.context import host

    class DaemonRunning(FactBase[bool]):
        """Is the process in PIDFILE alive? (a command plus a parser, like every pyinfra fact)"""

        def command(self, pidfile: str) -> str:
            q = shlex.quote(pidfile)
            return f"if [ -s {q} ] && kill -0 $(cat {q}) 2>/dev/null; then echo yes; else echo no; fi"

        def process(self, output: Iterable[str]) -> bool:
            return any(line.strip() == "yes" for line in output)

    @operation()
    def supervised(pidfile: str, argv: list[str], log: str, restart: bool = False) -> Generator[str, None, None]:
        """Keep ARGV running under lt-supervise; restart it (SIGHUP) when its config changed in this run."""
        sup = f"{pidfile}.supervisor"
        if not host.get_fact(DaemonRunning, pidfile=sup):
            cmd = [f"{BIN}/lt-daemon", "ensure", sup, "--background", log, "--", "/usr/bin/python3",
                   f"{BIN}/lt-supervise", "--pidfile", pidfile, "--", *argv]
            yield " ".join(shlex.quote(c) for c in cmd)
        elif restart:
            yield f"{BIN}/lt-daemon hup {shlex.quote(sup)}"

    return DaemonRunning, supervised


@dataclass
class _Deploy:
    """Collects operations for one host; `changed()` tells whether any op added so far will change something."""

    state: Any
    host_obj: Any
    systemd: bool
    names: list[tuple[str, Any]] = field(default_factory=list)

    def op(self, fn: Callable[..., Any], name: str, **kwargs: Any) -> bool:
        from pyinfra.api.operation import add_op
        from pyinfra.context import ctx_host, ctx_state

        res = add_op(self.state, fn, name=name, **kwargs)
        meta = res[self.host_obj]
        self.names.append((name, meta))
        with ctx_state.use(self.state), ctx_host.use(self.host_obj):  # will_change runs the op's generator
            return bool(meta.will_change)


def _common(d: _Deploy) -> None:
    from pyinfra.operations import files

    for path, mode in (("/etc/lienthong", "755"), (BIN, "755"), ("/var/log/lienthong", "750"),
                       ("/var/lib/lienthong", "750")):
        d.op(files.directory, f"directory {path}", path=path, mode=mode)
    for helper in ("lt-daemon", "lt-supervise"):
        d.op(files.put, f"helper {helper}", src=str(playbooks_dir() / "roles" / "lt_common" / "files" / helper),
             dest=f"{BIN}/{helper}", mode="755")


def _venv(d: _Deploy, path: str, wheels: str, copy_wheelhouse: bool) -> bool:
    from pyinfra.operations import files, pip

    changed = False
    if copy_wheelhouse:
        changed |= d.op(files.sync, "wheelhouse copied", src=str(REPO / ".wheelhouse") + "/", dest=wheels)
    changed |= d.op(pip.venv, f"virtualenv {path}", path=path, python="/usr/bin/python3")
    changed |= d.op(pip.packages, "lienthong from the wheelhouse (no index)", packages=["lienthong"],
                    pip=f"{path}/bin/pip", extra_install_args=f"--no-index --find-links {shlex.quote(wheels)}")
    return changed


def _service(d: _Deploy, name: str, argv: list[str], restart: bool) -> None:
    """systemd unit where systemd runs, else lt-supervise (the lab)."""
    from pyinfra.operations import files, systemd

    if d.systemd:
        unit = (f"[Unit]\nDescription=Liên Thông {name}\nAfter=network-online.target\n\n[Service]\n"
                f"ExecStart={' '.join(shlex.quote(a) for a in argv)}\nRestart=always\nRestartSec=2\n\n"
                "[Install]\nWantedBy=multi-user.target\n")
        restart |= d.op(files.put, f"unit lienthong-{name}", src=io.StringIO(unit),
                        dest=f"/etc/systemd/system/lienthong-{name}.service", mode="644")
        d.op(systemd.service, f"service lienthong-{name}", service=f"lienthong-{name}", running=True,
             enabled=True, restarted=restart, daemon_reload=restart)
    else:
        _, supervised = _pyinfra_ops()
        d.op(supervised, f"{name} supervised", pidfile=f"{RUN}/{name}.pid", argv=argv,
             log=f"/var/log/lienthong/{name}.log", restart=restart)


def _put_text(d: _Deploy, name: str, text: str, dest: str, mode: str = "644") -> bool:
    from pyinfra.operations import files

    return d.op(files.put, name, src=io.StringIO(text), dest=dest, mode=mode)


def _meeting_server(d: _Deploy, opts: dict[str, Any]) -> None:
    venv = "/opt/lienthong/server"
    changed = _venv(d, venv, opts["wheels"], opts["copy_wheelhouse"])
    env = ("# Liên Thông meeting server (written by conftool bootstrap)\n"
           "LIENTHONG_STATE=/var/lib/lienthong\n"
           f"MEETING_HOST={opts['bind']}\nMEETING_PORT={opts['port']}\n")
    changed |= _put_text(d, "meeting server settings", env, "/etc/lienthong/meeting-server.env", "640")
    launcher = ("#!/bin/sh\n# Liên Thông meeting server: settings from /etc/lienthong/meeting-server.env\nset -a\n"
                ". /etc/lienthong/meeting-server.env\nset +a\n"
                f'exec {venv}/bin/meeting serve --host "$MEETING_HOST" --port "$MEETING_PORT"\n')
    changed |= _put_text(d, "meeting server launcher", launcher, f"{BIN}/meeting-server", "755")
    _service(d, "meeting-server", [f"{BIN}/meeting-server"], changed)


def _turn(d: _Deploy, opts: dict[str, Any]) -> None:
    secret = opts.get("turn_secret")
    if not secret:
        raise BootstrapError("the turn role needs its credentials: --turn-credentials REF (env:VAR or "
                             "vault:FILE#key) naming the TURN user's password")
    conf = ("# Liên Thông TURN (coturn) — written by conftool bootstrap; never a public STUN/TURN host\n"
            f"listening-port={TURN_PORT}\nfingerprint\nlt-cred-mech\nrealm={opts['realm']}\n"
            f"user=lienthong:{secret}\nno-tls\nno-dtls\nno-cli\nno-multicast-peers\n"
            "pidfile=/run/lienthong/turnserver-own.pid\nlog-file=/var/log/lienthong/turnserver.log\nsimple-log\n")
    changed = _put_text(d, "turnserver.conf (credentials from the vault)", conf, "/etc/lienthong/turnserver.conf",
                        "600")
    _service(d, "turn", ["/usr/bin/turnserver", "-c", "/etc/lienthong/turnserver.conf"], changed)


def _audit_runner(d: _Deploy, opts: dict[str, Any]) -> None:
    from pyinfra.operations import files

    venv = "/opt/lienthong/server"
    changed = _venv(d, venv, opts["wheels"], opts["copy_wheelhouse"])
    changed |= d.op(files.sync, "inventory copied", src=str(opts["inventory_dir"]) + "/",
                    dest="/etc/lienthong/inventory")
    env = ("# Liên Thông scheduled audit (written by conftool bootstrap)\nLIENTHONG_STATE=/var/lib/lienthong\n"
           "LIENTHONG_INVENTORY=/etc/lienthong/inventory\n"
           f"AUDIT_CRON={shlex.quote(opts['cron'])}\n")
    changed |= _put_text(d, "audit runner settings", env, "/etc/lienthong/audit-runner.env", "640")
    launcher = ("#!/bin/sh\nset -a\n. /etc/lienthong/audit-runner.env\nset +a\n"
                f'exec {venv}/bin/conftool audit schedule --cron "$AUDIT_CRON"\n')
    changed |= _put_text(d, "audit runner launcher", launcher, f"{BIN}/audit-runner", "755")
    _service(d, "audit-runner", [f"{BIN}/audit-runner"], changed)


ROLE_DEPLOYS: dict[str, Callable[[_Deploy, dict[str, Any]], None]] = {
    "meeting-server": _meeting_server, "turn": _turn, "audit-runner": _audit_runner}


def bootstrap(inv: Inventory, hostname: str, role: str, *, state_dir: Path, lab: bool,
              turn_credentials: str | None = None, cron: str = "0 */4 * * *", port: int = MEETING_PORT,
              connect_timeout_s: int = 10) -> BootstrapReport:
    """Connect with pyinfra (paramiko SSH), add the role's operations, run them; one report per host."""
    if role not in ROLE_DEPLOYS:
        raise BootstrapError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    site, dev = find_host(inv, hostname)
    if not dev.credentials:
        raise BootstrapError(f"{dev.hostname} (site {site.id}) has no credentials reference in the inventory")
    cred = resolve(dev.credentials, base_dir=inv.base_dir, state_dir=state_dir)
    wheels = str(REPO / ".wheelhouse") if lab else "/opt/lienthong/wheelhouse"
    if not any((REPO / ".wheelhouse").glob("lienthong-*.whl")):
        raise BootstrapError(f"no lienthong wheel in {REPO / '.wheelhouse'}: run scripts/install.d/40-wheelhouse.sh")
    opts: dict[str, Any] = {"wheels": wheels, "copy_wheelhouse": not lab, "bind": "0.0.0.0", "port": port,
                            "realm": f"{inv.province.slug}.lienthong", "cron": cron, "inventory_dir": inv.base_dir}
    if role == "turn":
        if not turn_credentials:
            raise BootstrapError("the turn role needs --turn-credentials REF (env:VAR or vault:FILE#key)")
        opts["turn_secret"] = resolve(turn_credentials, base_dir=inv.base_dir, state_dir=state_dir).reveal()

    from pyinfra.api.config import Config
    from pyinfra.api.connect import connect_all
    from pyinfra.api.exceptions import PyinfraError
    from pyinfra.api.inventory import Inventory as PyInventory
    from pyinfra.api.operations import run_ops
    from pyinfra.api.state import State

    logging.getLogger("pyinfra").setLevel(logging.WARNING)
    data: dict[str, Any] = {"ssh_user": "root" if lab else (dev.username or "root"), "ssh_port": dev.port,
                            "ssh_known_hosts_file": "/dev/null", "ssh_strict_host_key_checking": "no",
                            "ssh_allow_agent": False, "ssh_look_for_keys": False}
    if cred.kind == "keyfile":
        data["ssh_key"] = cred.reveal()
    else:
        data["ssh_password"] = cred.reveal()
    report = BootstrapReport(host=dev.hostname, site=site.id, role=role)
    started = time.monotonic()
    py_inv = PyInventory(([(str(dev.mgmt_address), data)], {}))  # type: ignore[no-untyped-call]
    config = Config(SUDO=not lab and data["ssh_user"] != "root",  # type: ignore[no-untyped-call]
                    CONNECT_TIMEOUT=connect_timeout_s)
    state = State(py_inv, config)
    try:
        connect_all(state)
        hosts = list(state.active_hosts)
        if not hosts:
            raise BootstrapError(f"cannot connect to {dev.hostname} ({dev.mgmt_address}) over SSH as "
                                 f"{data['ssh_user']}: unreachable or key refused")
        h = hosts[0]
        systemd = h.get_fact(_systemd_fact()) if not lab else False
        d = _Deploy(state=state, host_obj=h, systemd=bool(systemd))
        _common(d)
        ROLE_DEPLOYS[role](d, opts)
        run_ops(state)
        for name, meta in d.names:
            ok = meta.is_complete() and meta.did_succeed(_raise_if_not_complete=False)
            report.ops.append(OpResult(name=name, changed=bool(ok and meta.did_change()), success=ok,
                                       error=None if ok else _op_error(meta)))
    except PyinfraError as exc:
        report.error = f"pyinfra: {exc}"
    finally:
        from pyinfra.api.connect import disconnect_all

        disconnect_all(state)
        report.elapsed_s = time.monotonic() - started
    return report


def _op_error(meta: Any) -> str:
    try:
        lines = [ln for ln in meta.stderr_lines if ln.strip()]
    except Exception:  # output is not kept for every failure kind
        lines = []
    return lines[-1] if lines else "failed"


@functools.cache
def _systemd_fact() -> Any:
    from pyinfra.api.facts import FactBase

    class SystemdRuns(FactBase[bool]):
        def command(self) -> str:
            return "test -d /run/systemd/system && echo yes || echo no"

        def process(self, output: Iterable[str]) -> bool:
            return any(line.strip() == "yes" for line in output)

    return SystemdRuns
