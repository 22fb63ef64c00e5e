"""The `meeting` CLI as a user runs it (a real subprocess): db, users, tokens; errors exit 2 cleanly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from meeting import migrate

MEETING = [sys.executable, "-m", "meeting.cli"]


def run(args: list[str], state: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LIENTHONG_STATE": str(state)}
    env.pop("LIENTHONG_DB", None)
    return subprocess.run(
        [*MEETING, *args], input=stdin, capture_output=True, text=True, env=env, timeout=120
    )


def test_users_tokens_and_default_db(state_dir: Path, reference_inventory: Path) -> None:
    r = run(["db", "upgrade", "--json"], state_dir)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["revision"] == migrate.head()
    assert (state_dir / "lienthong.db").is_file()  # the default: SQLite in the state dir
    assert run(["sites", "sync", "-i", str(reference_inventory)], state_dir).returncode == 0
    r = run(
        ["users", "add", "thu-ky", "--role", "secretariat", "--password-stdin", "--json"],
        state_dir,
        "mot-mat-khau-dai\n",
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"username": "thu-ky", "role": "secretariat", "site": None}
    r = run(
        ["users", "add", "xa", "--role", "operator", "--site", "03160", "--password-stdin"],
        state_dir,
        "mot-mat-khau-dai\n",
    )
    assert r.returncode == 0, r.stderr
    users = json.loads(run(["users", "list", "--json"], state_dir).stdout)
    assert {u["username"]: u["site"] for u in users} == {"thu-ky": None, "xa": "03160"}
    assert (
        run(["users", "passwd", "thu-ky", "--password-stdin"], state_dir, "mat-khau-moi-dai\n").returncode
        == 0
    )
    tok = run(["sites", "token", "03160"], state_dir)
    assert tok.returncode == 0 and tok.stdout.startswith("lts_")
    rv = run(["sites", "token", "03160", "--revoke", "--json"], state_dir)
    assert json.loads(rv.stdout) == {"site": "03160", "revoked": 1}
    assert "mot-mat-khau-dai" not in (state_dir / "lienthong.db").read_bytes().decode("latin-1")


def test_bad_input_exits_2_without_traceback(state_dir: Path, reference_inventory: Path) -> None:
    run(["sites", "sync", "-i", str(reference_inventory)], state_dir)
    cases = [
        (["users", "add", "a", "--role", "king", "--password-stdin"], "mot-mat-khau-dai\n", "Vai trò"),
        (["users", "add", "b", "--role", "operator", "--password-stdin"], "mot-mat-khau-dai\n", "--site"),
        (["users", "add", "c", "--role", "engineer", "--password-stdin"], "ngan\n", "10"),
        (["users", "passwd", "nobody", "--password-stdin"], "mot-mat-khau-dai\n", "nobody"),
        (["sites", "token", "99999"], "", "99999"),
    ]
    for args, stdin, needle in cases:
        r = run(args, state_dir, stdin)
        assert r.returncode == 2, (args, r.stderr)
        assert needle in r.stderr and "Traceback" not in r.stderr, r.stderr
    r = run(["db", "upgrade", "--db", "postgresql+psycopg://nobody@127.0.0.1:1/none"], state_dir)
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_a_bad_number_in_the_environment_names_the_variable(state_dir: Path) -> None:
    """A typo in a service file's environment (LIENTHONG_SFU_WORKERS=two) must say which variable, not trace back."""
    env = {**os.environ, "LIENTHONG_STATE": str(state_dir), "LIENTHONG_SFU_WORKERS": "two"}
    env.pop("LIENTHONG_DB", None)
    r = subprocess.run([*MEETING, "users", "list"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "LIENTHONG_SFU_WORKERS" in r.stderr and "two" in r.stderr and "Traceback" not in r.stderr, r.stderr
    env["LIENTHONG_SFU_WORKERS"] = "-1"
    r = subprocess.run([*MEETING, "users", "list"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and "LIENTHONG_SFU_WORKERS" in r.stderr, r.stderr
