"""The operator's local command and the agent's control socket (a real Unix socket; no server needed)."""

from __future__ import annotations

import asyncio
import json
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

from meeting.agent.control import ControlServer, request, socket_path
from tests.media.conftest import REPO


def _hand(run_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "meeting.agent.control", "hand", *args, "--run-dir", str(run_dir)],
                          capture_output=True, text=True, cwd=REPO, timeout=30)


def test_round_trip_and_socket_mode(tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []

    async def handler(req: dict[str, Any]) -> dict[str, Any]:
        seen.append(req)
        return {"ok": True, "meeting": 12, "raised": req["raised"]}

    async def main() -> dict[str, Any]:
        server = ControlServer(socket_path(tmp_path / "run", "03160"), handler)
        await server.start()
        try:
            assert stat.S_IMODE(server.path.stat().st_mode) == 0o666
            return await asyncio.to_thread(request, tmp_path / "run", "03160", {"cmd": "hand", "raised": True})
        finally:
            await server.stop()

    assert asyncio.run(main()) == {"ok": True, "meeting": 12, "raised": True}
    assert seen == [{"cmd": "hand", "raised": True}]
    assert not socket_path(tmp_path / "run", "03160").exists()  # removed on stop


def test_command_exit_codes_and_messages(tmp_path: Path) -> None:
    cp = _hand(tmp_path, "--site", "03160", "--json")
    assert cp.returncode == 1
    doc = json.loads(cp.stdout)
    assert doc["ok"] is False and "is the agent running?" in doc["error"] and "agent-03160.sock" in doc["error"]
    cp = _hand(tmp_path, "--site", "abc")
    assert cp.returncode == 2 and "Missing or invalid site id" in cp.stderr and "Traceback" not in cp.stderr
