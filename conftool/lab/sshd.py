"""sshd per router: key-only login of the automation user, who lands in vtysh for that router's instance.

The user exists only inside each router's mount namespace (a private /etc/passwd, /etc/group, /etc/shadow
bound over the machine's), so the machine's own user database is never changed.
"""

from __future__ import annotations

import grp
import logging
import os
import pwd
import shutil
import socket
from pathlib import Path

from conftool.lab.errors import LabError
from conftool.lab.netns import run
from conftool.lab.plan import RouterPlan

logger = logging.getLogger(__name__)

SSHD = Path("/usr/sbin/sshd")
KEY_NAME = "netops_ed25519"  # the reference inventory's keyfile:lab/keys/netops_ed25519
HOST_KEY_NAME = "ssh_host_ed25519_key"
PRIV = Path("/run/lt")  # inside the router's mount namespace: its sshd config and host key
BIN = Path("/run/lt-bin")  # inside the router: the login script, readable by the automation user
LOGIN_SCRIPT = Path(__file__).with_name("lt-shell.sh")
LAB_UID = 2900  # first uid tried for the automation user; only ever exists inside router namespaces


def ensure_keys(keys_dir: Path) -> tuple[Path, Path]:
    """Generate the automation key and the routers' host key into the state dir (once per lab)."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    keys_dir.chmod(0o700)
    if shutil.which("ssh-keygen") is None:
        raise LabError("ssh-keygen is missing: install openssh-client (scripts/install.sh)")
    out = []
    for name, comment in ((KEY_NAME, "netops@lienthong-lab"), (HOST_KEY_NAME, "lienthong-lab-router")):
        key = keys_dir / name
        if not key.exists():
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(key)])
        out.append(key)
    return out[0], out[1]


def _free_uid(start: int = LAB_UID) -> int:
    used = {p.pw_uid for p in pwd.getpwall()} | {g.gr_gid for g in grp.getgrall()}
    uid = start
    while uid in used:
        uid += 1
    return uid


class Identity:
    """The automation user's private identity, computed once per lab from the machine's databases."""

    def __init__(self, username: str) -> None:
        self.username = username
        try:
            self.frr_uid = pwd.getpwnam("frr").pw_uid
            self.frr_gid = pwd.getpwnam("frr").pw_gid
            self.vty_gid = grp.getgrnam("frrvty").gr_gid
        except KeyError:
            raise LabError("the frr user or the frrvty group is missing: install Debian's frr package") from None
        self.uid = _free_uid()
        self.passwd = Path("/etc/passwd").read_text()
        self.group = Path("/etc/group").read_text()

    def passwd_text(self) -> str:
        lines = [ln for ln in self.passwd.splitlines() if not ln.startswith(self.username + ":")]
        lines.append(f"{self.username}:x:{self.uid}:{self.uid}:Lien Thong lab automation:/run/{self.username}:/bin/sh")
        return "\n".join(lines) + "\n"

    def group_text(self) -> str:
        out = []
        for ln in self.group.splitlines():
            parts = ln.split(":")
            if len(parts) == 4 and parts[0] == self.username:
                continue
            if len(parts) == 4 and parts[0] == "frrvty":
                members = [m for m in parts[3].split(",") if m]
                parts[3] = ",".join([*members, self.username])
                ln = ":".join(parts)
            out.append(ln)
        out.append(f"{self.username}:x:{self.uid}:")
        return "\n".join(out) + "\n"

    def shadow_text(self) -> str:
        # Only the automation user: "*" = no password (key only) but not locked. No machine hash is copied.
        return f"{self.username}:*:19000:0:99999:7:::\n"


PAM_FRR = (
    "# Lien Thong lab: vtysh for the automation user (Debian's file lacks an account stack)\n"
    "auth sufficient pam_permit.so\naccount sufficient pam_permit.so\n"
)


def login_command(r: RouterPlan) -> str:
    """What the automation user runs: `lt-shell.sh` (vtysh for interactive logins, plus the device-side
    commit-confirm watchdog that deploy drives over exec requests), or plain vtysh without it."""
    if LOGIN_SCRIPT.is_file():
        return f"/bin/sh {BIN}/{LOGIN_SCRIPT.name} {r.instance}"
    return f"/usr/bin/vtysh -N {r.instance}"


def sshd_config(r: RouterPlan) -> str:
    return "\n".join([
        f"ListenAddress {r.mgmt_address}",
        f"HostKey {PRIV}/{HOST_KEY_NAME}",
        "PidFile /run/sshd.pid",
        "UsePAM no",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes",
        f"AuthorizedKeysFile /run/{r.username}/authorized_keys",
        "StrictModes no",
        f"AllowUsers {r.username}",
        "PermitRootLogin no",
        "PrintMotd no",
        "PrintLastLog no",
        "X11Forwarding no",
        "AllowTcpForwarding no",
        "PermitTunnel no",
        "MaxStartups 100:30:200",
        "LoginGraceTime 30",
        f"ForceCommand {login_command(r)}",
        "",
    ])


def prepare(router_dir: Path, r: RouterPlan, ident: Identity, host_key: Path, pubkey: str) -> None:
    """Private user database, PAM file, authorized key and sshd_config of one router."""
    (router_dir / "passwd").write_text(ident.passwd_text())
    (router_dir / "group").write_text(ident.group_text())
    shadow = router_dir / "shadow"
    shadow.write_text(ident.shadow_text())
    shadow.chmod(0o640)
    (router_dir / "pam-frr").write_text(PAM_FRR)
    run_dir = router_dir / "run"
    priv = run_dir / PRIV.name
    priv.mkdir(parents=True, exist_ok=True)
    priv.chmod(0o700)
    (priv / "sshd_config").write_text(sshd_config(r))
    shutil.copyfile(host_key, priv / HOST_KEY_NAME)
    (priv / HOST_KEY_NAME).chmod(0o600)
    if LOGIN_SCRIPT.is_file():
        bin_dir = run_dir / BIN.name
        bin_dir.mkdir(parents=True, exist_ok=True)
        bin_dir.chmod(0o755)
        shutil.copyfile(LOGIN_SCRIPT, bin_dir / LOGIN_SCRIPT.name)
        (bin_dir / LOGIN_SCRIPT.name).chmod(0o755)
    (run_dir / "sshd").mkdir(parents=True, exist_ok=True)
    (run_dir / "sshd").chmod(0o755)
    home = run_dir / r.username
    home.mkdir(parents=True, exist_ok=True)
    ak = home / "authorized_keys"
    ak.write_text(pubkey)
    for p in (home, ak):
        os.chown(p, ident.uid, ident.uid)
    home.chmod(0o700)
    ak.chmod(0o600)


def argv() -> list[str]:
    return [str(SSHD), "-D", "-f", f"{PRIV}/sshd_config", "-E", "/var/log/sshd.log"]


def listening(address: str) -> bool:
    """Whether something accepts TCP on port 22 of ``address`` (sshd has finished starting)."""
    try:
        with socket.create_connection((address, 22), timeout=0.3):
            return True
    except OSError:
        return False
