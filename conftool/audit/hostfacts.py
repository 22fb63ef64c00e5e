"""Facts from Linux hosts (meeting-room PCs, the province server): one SSH exec per host, parsed here.

Hosts are not routers: no CLI prompt to drive, so one `exec` request runs a short POSIX `sh` script that prints
each fact in its own marked section (time sync from `chronyc -n tracking`, the chrony sources the baseline
configured, the room agent's pid file and that pid's command line). Parsers are pure functions of that text, so
they are tested with captured output; the SSH part runs in the audit's thread pool under the host's timeout.

The agent contract (issues 10 and 12): the agent's supervisor keeps its pid in `/run/lienthong/agent.pid`; "alive"
means that pid exists and its command line contains `meeting` and `agent`. The `meeting-endpoint` playbook writes
`/etc/lienthong/agent.yml` (and on systemd hosts `lienthong-agent.service`): their presence is what tells an agent
that is not installed yet (skipped) from one that died (fail).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from conftool.errors import ConftoolError
from conftool.inventory import Device, Inventory, Site, resolve

logger = logging.getLogger(__name__)

AGENT_PIDFILE = "/run/lienthong/agent.pid"
AGENT_CONFIG = "/etc/lienthong/agent.yml"
AGENT_UNIT = "/etc/systemd/system/lienthong-agent.service"
CHRONY_CONFIGS = ("/etc/chrony/chrony.conf", "/etc/chrony/conf.d/*.conf", "/etc/chrony/sources.d/*.sources",
                  "/etc/chrony.conf")
MARK = "@@lt "

# One exec request; every section starts with a marker line. `timeout` keeps a hung chronyc inside the budget.
SCRIPT = f"""m() {{ printf '\\n{MARK}%s\\n' "$1"; }}
if command -v chronyc >/dev/null 2>&1; then
  out=$(timeout 5 chronyc -n tracking 2>&1); rc=$?
  m chronyc; printf '%s\\n' "$out"; m chronyc-rc; echo "$rc"
else
  m chronyc-missing
fi
m chrony-config; cat {' '.join(CHRONY_CONFIGS)} 2>/dev/null
m agent-installed; for f in {AGENT_CONFIG} {AGENT_UNIT}; do [ -e "$f" ] && echo "$f"; done
m agent-pidfile; [ -r {AGENT_PIDFILE} ] && head -c 64 {AGENT_PIDFILE}
m agent-cmdline; p=$(head -c 64 {AGENT_PIDFILE} 2>/dev/null | tr -cd 0-9)
[ -n "$p" ] && [ -r /proc/$p/cmdline ] && tr '\\000' ' ' < /proc/$p/cmdline
m end
"""


@dataclass
class Tracking:
    """`chronyc -n tracking`, the fields the verdict needs."""

    reference: str  # "10.11.0.11" (or the refid when chronyc shows no address)
    stratum: int
    offset_s: float  # system clock minus NTP time: positive = fast
    leap: str  # "Normal", "Insert second", "Delete second", "Not synchronised"

    @property
    def synced(self) -> bool:
        return self.leap in ("Normal", "Insert second", "Delete second")


@dataclass
class HostFacts:
    site: str
    hostname: str
    error: str | None = None  # SSH failed: the host is unreachable for the audit
    problem: str | None = None  # SSH worked but the answer could not be read (checks report `error`)
    chronyc: str = "missing"  # "missing" (not installed) | "answered" | "no-daemon" | "unparsed"
    chronyc_output: str = ""
    tracking: Tracking | None = None
    ntp_sources: list[str] = field(default_factory=list)  # server/pool/peer names in the chrony config
    agent_installed: list[str] = field(default_factory=list)  # files that show the playbook ran
    agent_pid: int | None = None
    agent_pidfile: bool = False
    agent_cmdline: str | None = None
    elapsed_s: float = 0.0

    @property
    def agent_alive(self) -> bool:
        words = (self.agent_cmdline or "").split()
        return any("meeting" in w for w in words) and any("agent" in w for w in words)


class HostParseError(ValueError):
    """The script's output lacks its markers (not a POSIX shell, or the session was cut)."""


def sections(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    name: str | None = None
    lines: list[str] = []
    for line in text.splitlines():
        if line.startswith(MARK):
            if name is not None:
                out[name] = "\n".join(lines).strip()
            name, lines = line[len(MARK):].strip(), []
        elif name is not None:
            lines.append(line)
    if name is not None:
        out[name] = "\n".join(lines).strip()
    if "end" not in out:
        raise HostParseError("the host's answer is incomplete (no end marker): is its login shell POSIX sh/bash?")
    return out


def parse_tracking(text: str) -> Tracking:
    """`chronyc -n tracking` (chrony 3/4): "Key : value" lines."""
    kv: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            kv[key.strip()] = value.strip()
    try:
        ref = kv["Reference ID"]
        stratum = int(kv["Stratum"])
        words = kv["System time"].split()  # "0.000012345 seconds fast of NTP time"
        offset = float(words[0]) * (1 if words[2] == "fast" else -1)
        leap = kv["Leap status"]
    except (KeyError, IndexError, ValueError):
        raise HostParseError(f"`chronyc -n tracking` output not understood: {text.strip()[:160]!r}") from None
    # "0A0B000B (10.11.0.11)": the address in brackets when there is one
    addr = ref.partition("(")[2].rstrip(")").strip() or ref.split()[0]
    return Tracking(reference=addr, stratum=stratum, offset_s=offset, leap=leap)


def parse_sources(conf: str) -> list[str]:
    out = []
    for line in conf.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) >= 2 and words[0] in ("server", "pool", "peer"):
            out.append(words[1])
    return out


def parse(site: str, hostname: str, text: str) -> HostFacts:
    """Everything a host said, from the script's marked sections."""
    sec = sections(text)
    hf = HostFacts(site=site, hostname=hostname)
    if "chronyc" in sec:
        rc = sec.get("chronyc-rc", "").strip()
        hf.chronyc_output = sec["chronyc"]
        if rc == "0":
            try:
                hf.tracking = parse_tracking(sec["chronyc"])
                hf.chronyc = "answered"
            except HostParseError as exc:
                hf.chronyc, hf.problem = "unparsed", str(exc)
        else:
            hf.chronyc = "no-daemon"
    hf.ntp_sources = parse_sources(sec.get("chrony-config", ""))
    hf.agent_installed = [x for x in sec.get("agent-installed", "").split() if x]
    hf.agent_pidfile = "agent-pidfile" in sec and sec["agent-pidfile"] != ""
    pid = sec.get("agent-pidfile", "").strip()
    hf.agent_pid = int(pid) if pid.isdigit() else None
    hf.agent_cmdline = sec.get("agent-cmdline") or None
    return hf


def _connect_args(inv: Inventory, dev: Device) -> dict[str, Any]:
    """paramiko `connect` arguments; the secret is resolved here and only here (never logged)."""
    if dev.mgmt_address is None:
        raise ConftoolError(f"{dev.hostname}: no management address in the inventory")
    args: dict[str, Any] = {"hostname": str(dev.mgmt_address), "port": dev.port, "username": dev.username or "root",
                            "timeout": dev.timeout_s, "banner_timeout": dev.timeout_s,
                            "auth_timeout": dev.timeout_s, "allow_agent": False, "look_for_keys": False}
    if dev.credentials:
        secret = resolve(dev.credentials, base_dir=inv.base_dir)
        if secret.kind == "keyfile":
            args["key_filename"] = secret.reveal()
        else:
            args["password"] = secret.reveal()
    return args


def connect_args(inv: Inventory, dev: Device) -> dict[str, Any] | str:
    """paramiko `connect` arguments, or why there are none (no management address, unresolvable secret)."""
    try:
        return _connect_args(inv, dev)
    except ConftoolError as exc:
        return str(exc)


def gather(inv: Inventory, site: Site, dev: Device) -> HostFacts:
    """One SSH session, one exec; runs in a worker thread. SSH problems become `error`, never an exception."""
    args = connect_args(inv, dev)
    if isinstance(args, str):
        return HostFacts(site=site.id, hostname=dev.hostname, error=args)
    return gather_with(site.id, dev.hostname, args, dev.timeout_s)


def gather_with(site_id: str, hostname: str, args: dict[str, Any], timeout: float) -> HostFacts:
    """`gather` with the connect arguments already resolved (what an audit worker process receives)."""
    import paramiko

    t0 = time.monotonic()
    hf = HostFacts(site=site_id, hostname=hostname)
    where = f"{args['username']}@{args['hostname']}:{args['port']}"
    client = paramiko.SSHClient()
    # like the routers' Netmiko sessions: host keys are not pinned (lab hosts share one generated key)
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    try:
        client.connect(**args)
        _, stdout, _ = client.exec_command(SCRIPT, timeout=timeout)
        text = stdout.read().decode(errors="replace")
        stdout.channel.recv_exit_status()
        hf = parse(site_id, hostname, text)
    except paramiko.AuthenticationException:
        hf.error = f"SSH authentication failed for {where}"
    except (paramiko.SSHException, OSError, EOFError) as exc:
        hf.error = f"SSH to {where} failed: {_short(exc)}"
    except HostParseError as exc:
        hf.problem = f"{where}: {exc}"
    finally:
        client.close()
    hf.elapsed_s = round(time.monotonic() - t0, 3)
    return hf


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return (text[:200] + "…") if len(text) > 200 else (text or exc.__class__.__name__)
