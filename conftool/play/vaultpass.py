"""Hand the temporary vault password to Ansible without writing it anywhere.

ansible-runner records the whole environment of the job in its artifacts (`artifacts/<id>/command`), so the
password can travel neither in a file nor in an environment variable. Ansible asks a *vault password client
script* instead; ours connects to a Unix socket in the run's private (0700) directory, served by a thread of this
process for the duration of the run only.
"""

from __future__ import annotations

import logging
import secrets
import socket
import socketserver
import sys
import threading
from pathlib import Path
from types import TracebackType

logger = logging.getLogger(__name__)

_CLIENT = """#!{python}
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect({sock!r})
data = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
sys.stdout.write(data.decode() + "\\n")
"""


class VaultPasswordServer:
    """`with VaultPasswordServer(run_dir) as vps:` → `vps.password`, `vps.client` (the script for Ansible)."""

    def __init__(self, run_dir: Path) -> None:
        self.password = secrets.token_urlsafe(32)
        self.socket_path = run_dir / "vault.sock"
        self.client = run_dir / "vault-pass-client.py"
        self._server: socketserver.UnixStreamServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> VaultPasswordServer:
        password = self.password.encode()

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                conn: socket.socket = self.request
                conn.sendall(password)

        self._server = socketserver.UnixStreamServer(str(self.socket_path), Handler)
        self.socket_path.chmod(0o600)
        self._thread = threading.Thread(target=self._server.serve_forever, name="vault-pass", daemon=True)
        self._thread.start()
        self.client.write_text(_CLIENT.format(python=sys.executable, sock=str(self.socket_path)))
        self.client.chmod(0o700)
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving; safe to call twice."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        self.socket_path.unlink(missing_ok=True)
