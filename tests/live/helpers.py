"""Call the meeting service inside a test namespace (the test process itself stays in the root namespace).

Each call runs a tiny stdlib ``urllib`` client with ``ip netns exec`` — the server listens on the namespace's
private address only, and nothing here ever reaches another address.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

_CLIENT = r"""
import json, sys, urllib.request, urllib.error
method, url, token, body = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
req = urllib.request.Request(url, method=method, data=body.encode() if body else None,
                             headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
try:
    with urllib.request.urlopen(req, timeout=20) as r:
        print(r.status); print(r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code); print(e.read().decode())
"""


class Api:
    """``api.get("/api/v1/…")`` → (status, JSON) as the user whose API token this is."""

    def __init__(self, ns: str, base: str, token: str) -> None:
        self.ns, self.base, self.token = ns, base, token

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        cp = subprocess.run(
            ["ip", "netns", "exec", self.ns, sys.executable, "-c", _CLIENT, method, self.base + path, self.token,
             json.dumps(body) if body is not None else ""],
            capture_output=True, text=True, timeout=30)
        if cp.returncode != 0:
            raise AssertionError(f"{method} {path}: client failed\n{cp.stderr[-2000:]}")
        status, _, text = cp.stdout.partition("\n")
        return int(status), json.loads(text) if text.strip() else None

    def get(self, path: str) -> Any:
        status, doc = self.call("GET", path)
        assert status == 200, (path, status, doc)
        return doc

    def post(self, path: str, body: Any = None, expect: int = 200) -> Any:
        status, doc = self.call("POST", path, body if body is not None else {})
        assert status == expect, (path, status, doc)
        return doc

    def delete(self, path: str, expect: int = 200) -> Any:
        status, doc = self.call("DELETE", path)
        assert status == expect, (path, status, doc)
        return doc


def until(what: str, check: Callable[[], Any], timeout: float = 30, every: float = 0.3) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` and the last value otherwise."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; last: {last!r}")


def rows(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["site"]: r for r in doc["sites"]}
