"""The SOC syslog collector of the lab: receives UDP syslog and appends each message to a file.

Run inside the services namespace (`python -m conftool.lab.syslogd --bind ADDR --out FILE`); a real rsyslog
would need a config tree under /etc, this needs nothing outside the lab's state directory.
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
import time
from pathlib import Path

logger = logging.getLogger(__name__)


def serve(bind: str, port: int, out: Path) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((bind, port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with out.open("a", encoding="utf-8") as f:
        while True:
            data, (src, _) = sock.recvfrom(65535)
            text = data.decode("utf-8", errors="replace").rstrip("\n")
            f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')} {src} {text}\n")
            f.flush()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bind", required=True)
    ap.add_argument("--port", type=int, default=514)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    serve(args.bind, args.port, args.out)


if __name__ == "__main__":
    main()
