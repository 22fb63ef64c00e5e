"""One emulated Linux host (meeting-room PC, province server): a network namespace on its site's LAN and on the
management network, a private /etc, /var, /opt, /home, /root (overlayfs over the machine's directories) and an
empty private /run and /tmp, in a mount + UTS namespace held by an anchor process, and its own sshd.

Ansible changes the host's overlay (the upper directories under the lab's state dir), never the machine: the
machine's `/usr` (Python, chrony, rsyslog, …) is shared read-only in spirit, everything a role configures lives in
the private directories. Users: `root` and the inventory's automation user (`netops`) log in with the lab key.
"""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path

from conftool.lab.plan import HostPlan, LabPlan
from conftool.lab.procs import Recorder, wait_for
from conftool.lab.sshd import SSHD, _free_uid, listening
from conftool.lab.state import LabState

READY = ".anchor-ready"
START_TIMEOUT = 30.0
OVERLAID = ("etc", "var", "opt", "home", "root")  # the machine's directory is the lower layer
PRIVATE = ("run", "tmp")  # fresh and empty: the machine's live sockets and temp files stay out of sight
HOST_KEY = "lt_host_ed25519_key"
SSHD_CONFIG = "lt_sshd_config"
SFTP = Path("/usr/lib/openssh/sftp-server")


def host_dir(lab_dir: Path, h: HostPlan) -> Path:
    return lab_dir / "hosts" / h.hostname


def _mount_order(hdir: Path) -> list[str]:
    """Mount targets, the one that holds the state dir last (after it is mounted over, paths under it vanish)."""
    targets = ["/" + d for d in (*OVERLAID, *PRIVATE)]
    return sorted(targets, key=lambda t: hdir.is_relative_to(t))


SUITE = Path(__file__).resolve().parents[2]  # the checkout (editable install): its wheelhouse, playbooks, venv


def _kept(target: str) -> list[Path]:
    """Paths under a fresh private dir that hosts must still see: the suite's own checkout, when it lives under
    /tmp (a CI clone, say) — hosts install the room agent from its wheelhouse and run its venv."""
    return [SUITE] if target in ("/" + d for d in PRIVATE) and SUITE.is_relative_to(target) else []


def anchor_script(hdir: Path, h: HostPlan) -> str:
    """Mounts with paths relative to the host dir (the cwd), so mounting over an ancestor never hides them."""
    q = shlex.quote
    lines = ["set -e", f"cd {q(str(hdir))}"]
    for target in _mount_order(hdir):
        name = target.lstrip("/")
        kept = _kept(target)
        for i, path in enumerate(kept):  # hold it by a handle under the host dir before it is mounted over
            lines += [f"mkdir -p ./kept-{name}-{i}", f"mount --bind {q(str(path))} ./kept-{name}-{i}"]
        if name in OVERLAID:
            lines.append(f"mount -t overlay lt-host -o lowerdir={target},upperdir={name}.up,workdir={name}.work "
                         f"{target}")
        else:
            lines.append(f"mount --bind ./{name} {target}")
        for i, path in enumerate(kept):
            lines += [f"mkdir -p {q(str(path))}", f"mount --bind ./kept-{name}-{i} {q(str(path))}"]
    lines += [
        "mkdir -p /run/sshd /run/lock && chmod 755 /run/sshd && chmod 1777 /run/lock",
        f"hostname {q(h.hostname)}",
        f"touch /run/{READY}",
        # sshd itself holds the namespace (no separate anchor process: 130 hosts × ~2 MB saved)
        f"exec {SSHD} -D -f /etc/ssh/{SSHD_CONFIG} -E /var/log/lt-sshd.log",
    ]
    return "\n".join(lines) + "\n"


def _locked_shadow() -> str:
    """The machine's user names with no usable password ("*": key login only); no machine hash is copied."""
    names = [ln.split(":", 1)[0] for ln in Path("/etc/passwd").read_text().splitlines() if ":" in ln]
    return "".join(f"{n}:*:19000:0:99999:7:::\n" for n in names)


def sshd_config() -> str:
    lines = [
        "Port 22",
        "ListenAddress 0.0.0.0",
        f"HostKey /etc/ssh/{HOST_KEY}",
        "PidFile /run/sshd.pid",
        "UsePAM no",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes",
        "AuthorizedKeysFile .ssh/authorized_keys",
        "PermitRootLogin prohibit-password",
        "StrictModes no",
        "PrintMotd no",
        "PrintLastLog no",
        "X11Forwarding no",
        "MaxStartups 100:30:200",
        "LoginGraceTime 30",
    ]
    if SFTP.exists():  # Ansible copies files over SFTP
        lines.append(f"Subsystem sftp {SFTP}")
    return "\n".join(lines) + "\n"


def _authorize(home: Path, pubkey: str, uid: int) -> None:
    ssh = home / ".ssh"
    ssh.mkdir(parents=True, exist_ok=True)
    (ssh / "authorized_keys").write_text(pubkey)
    for p, mode in ((home, 0o700), (ssh, 0o700), (ssh / "authorized_keys", 0o600)):
        os.chown(p, uid, uid)
        p.chmod(mode)


def prepare(lab_dir: Path, h: HostPlan, host_key: Path, pubkey: str, uid: int, dns: list[str]) -> Path:
    """Upper and work directories, and the files the host starts with: its name, users, sshd, resolver."""
    hdir = host_dir(lab_dir, h)
    for name in OVERLAID:
        up = hdir / f"{name}.up"
        up.mkdir(parents=True, exist_ok=True)
        (hdir / f"{name}.work").mkdir(exist_ok=True)
        up.chmod(Path("/" + name).stat().st_mode & 0o7777)  # the merged root takes the upper dir's mode
    for name in PRIVATE:
        (hdir / name).mkdir(exist_ok=True)
        (hdir / name).chmod(0o1777 if name == "tmp" else 0o755)
    (hdir / "log").mkdir(exist_ok=True)
    etc = hdir / "etc.up"
    (etc / "hostname").write_text(h.hostname + "\n")
    (etc / "hosts").write_text(f"127.0.0.1\tlocalhost\n{h.address.split('/')[0]}\t{h.hostname}\n")
    if dns:
        (etc / "resolv.conf").write_text("".join(f"nameserver {a}\n" for a in dns))
    passwd = [ln for ln in Path("/etc/passwd").read_text().splitlines() if not ln.startswith(h.username + ":")]
    passwd.append(f"{h.username}:x:{uid}:{uid}:Lien Thong lab automation:/home/{h.username}:/bin/bash")
    (etc / "passwd").write_text("\n".join(passwd) + "\n")
    group = [ln for ln in Path("/etc/group").read_text().splitlines() if not ln.startswith(h.username + ":")]
    group.append(f"{h.username}:x:{uid}:")
    (etc / "group").write_text("\n".join(group) + "\n")
    shadow = etc / "shadow"
    shadow.write_text(_locked_shadow() + f"{h.username}:*:19000:0:99999:7:::\n")
    shadow.chmod(0o640)
    ssh = etc / "ssh"
    ssh.mkdir(exist_ok=True)
    ssh.chmod(0o755)
    (ssh / SSHD_CONFIG).write_text(sshd_config())
    shutil.copyfile(host_key, ssh / HOST_KEY)
    (ssh / HOST_KEY).chmod(0o600)
    _authorize(hdir / "root.up", pubkey, 0)
    (hdir / "root.up").chmod(0o700)
    _authorize(hdir / "home.up" / h.username, pubkey, uid)
    (hdir / "anchor.sh").write_text(anchor_script(hdir, h))
    return hdir


def enter_argv(state: LabState, h: HostPlan) -> list[str]:
    """Prefix that runs a command inside the host (its sshd holds the host's namespaces)."""
    return state.enter_argv(h.hostname, "sshd", f"host {h.hostname}")


def start(rec: Recorder, lab_dir: Path, h: HostPlan) -> None:
    """Mounts, hostname, then sshd in the foreground: its PID holds the host's namespaces."""
    hdir = host_dir(lab_dir, h)
    log = hdir / "log" / "anchor.out"
    rec.spawn(["ip", "netns", "exec", h.namespace, "unshare", "--uts", "--", "sh", str(hdir / "anchor.sh")],
              log, "sshd", h.hostname)
    wait_for(lambda: (hdir / "run" / READY).exists(), START_TIMEOUT, f"host {h.hostname} namespace setup", log)
    wait_for(lambda: listening(h.mgmt_address), START_TIMEOUT,
             f"host {h.hostname} sshd on {h.mgmt_address}:22", hdir / "var.up" / "log" / "lt-sshd.log")


def prepare_all(lab_dir: Path, plan: LabPlan, host_key: Path, pubkey: str) -> None:
    uid = _free_uid()
    dns = plan.services.dns if plan.services else []
    for h in plan.hosts:
        prepare(lab_dir, h, host_key, pubkey, uid, dns)
