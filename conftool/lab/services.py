"""The province data centre's services namespace: SOC syslog collector, NTP (chrony -x) and DNS (dnsmasq).

All three run inside `lt-svc`, write only under the lab's state directory, and are stopped by `down`.
"""

from __future__ import annotations

import functools
import logging
import shutil
import sys
from pathlib import Path

from conftool.lab.errors import LabError
from conftool.lab.plan import LabPlan, ServicesPlan
from conftool.lab.procs import Recorder, wait_for

logger = logging.getLogger(__name__)

NODE = "svc"
SERVICES = ("syslog", "ntp", "dns")


def svc_dir(lab_dir: Path) -> Path:
    return lab_dir / "svc"


def missing_binaries() -> list[str]:
    return [b for b in ("chronyd", "dnsmasq") if shutil.which(b) is None]


def chrony_conf(s: ServicesPlan, d: Path) -> str:
    # -x on the command line: chronyd never touches the machine's clock; it only serves time.
    return "\n".join([
        "local stratum 8",
        "allow all",
        *(f"bindaddress {a}" for a in s.ntp[:1]),
        "cmdport 0",
        "bindcmdaddress /",
        f"pidfile {d / 'chronyd.pid'}",
        "",
    ])


def _listening_udp(port: int, ns_pid: int) -> bool:
    try:
        text = Path(f"/proc/{ns_pid}/net/udp").read_text()
    except OSError:
        return False
    return any(line.split()[1].endswith(f":{port:04X}") for line in text.splitlines()[1:] if line.split())


def start(rec: Recorder, lab_dir: Path, plan: LabPlan) -> None:
    s = plan.services
    if s is None:
        return
    missing = missing_binaries()
    if missing:
        raise LabError(f"{', '.join(missing)} missing: install chrony and dnsmasq-base (scripts/install.sh)")
    d = svc_dir(lab_dir)
    d.mkdir(parents=True, exist_ok=True)
    (d / "chrony.conf").write_text(chrony_conf(s, d))
    enter = ["ip", "netns", "exec", s.namespace]
    syslog = rec.spawn([*enter, sys.executable, "-m", "conftool.lab.syslogd", "--bind", s.syslog,
                        "--out", str(d / "syslog.log")], d / "syslogd.out", "syslog", NODE)
    ntp = rec.spawn([*enter, "chronyd", "-x", "-d", "-f", str(d / "chrony.conf")], d / "chronyd.out", "ntp", NODE)
    records = [f"--host-record={h},{a}" for h, a in plan.hosts_records]
    dns = rec.spawn([*enter, "dnsmasq", "-k", "-C", "/dev/null", "--no-resolv", "--no-hosts", "--bind-interfaces",
                     *(f"--listen-address={a}" for a in s.dns), "--pid-file=", "--log-facility=-", *records],
                    d / "dnsmasq.out", "dns", NODE)
    for proc, port, name, log in ((syslog, 514, "SOC syslog collector", "syslogd.out"),
                                  (ntp, 123, "NTP server", "chronyd.out"), (dns, 53, "DNS server", "dnsmasq.out")):
        wait_for(functools.partial(_listening_udp, port, proc.pid), 20, f"{name} start", d / log)
