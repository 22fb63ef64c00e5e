"""`meeting agent` refuses bad configuration clearly (exit 2) before it connects anywhere."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from meeting.agent import config
from meeting.agent.runner import Backoff
from tests.agent.helpers import MEETING, REPO

TOKEN = "lts_" + "x" * 43


def _token(tmp_path: Path, mode: int = 0o600, text: str = TOKEN) -> Path:
    p = tmp_path / "site.token"
    p.write_text(text + "\n")
    p.chmod(mode)
    return p


def _yaml(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "agent.yml"
    p.write_text(text)
    return p


def test_yaml_then_flags(tmp_path: Path) -> None:
    tok = _token(tmp_path)
    y = _yaml(tmp_path, f"site: '03160'\nserver: http://10.11.0.20:8000/\ntoken_file: {tok}\nsink: null\n")
    cfg = config.load(y)
    assert (cfg.site, cfg.server, cfg.source, cfg.sink, cfg.token) == (
        "03160", "http://10.11.0.20:8000", "testsrc", "null", TOKEN)
    assert config.load(y, site="03124", server="http://127.0.0.1:9").site == "03124"
    assert TOKEN not in repr(cfg)


@pytest.mark.parametrize(
    ("yaml_text", "flags", "field", "needle"),
    [
        ("server: http://x:1\n", {}, "site", "Missing site, token_file"),
        ("site: '03160'\nserver: ftp://x\ntoken_file: TOK\n", {}, "server", "http(s)://host:port"),
        ("site: abc\nserver: http://x:1\ntoken_file: TOK\n", {}, "site", "site id"),
        ("site: '03160'\nserver: http://x:1\ntoken_file: TOK\ncolour: red\n", {}, "config", "unsupported keys colour"),
        ("site: '03160'\nserver: http://x:1\ntoken_file: TOK\nsource: /no/such.mp4\n", {}, "source", "Invalid source"),
        ("site: '03160'\nserver: http://x:1\ntoken_file: TOK\nsink: speaker\n", {}, "sink", "Invalid sink"),
        ("site: '03160'\nserver: http://x:1\ntoken_file: TOK\nbackoff_cap_s: -1\n", {}, "backoff_cap_s", "positive"),
        ("- a list\n", {}, "config", "mapping"),
        ("site: 03160\nserver: http://x:1\ntoken_file: TOK\n", {}, "site", "quote the site id"),
        ("site: [unclosed\n", {}, "config", "not valid YAML"),
    ],
)
def test_bad_config_names_the_field(tmp_path: Path, yaml_text: str, flags: dict[str, str], field: str,
                                    needle: str) -> None:
    tok = _token(tmp_path)
    y = _yaml(tmp_path, yaml_text.replace("TOK", str(tok)))
    with pytest.raises(config.AgentConfigError) as exc:
        config.load(y, **flags)
    assert exc.value.field == field
    assert needle in exc.value.render("en")
    assert exc.value.exit_code == 2


def test_token_file_must_be_private(tmp_path: Path) -> None:
    tok = _token(tmp_path, 0o644)
    with pytest.raises(config.AgentConfigError) as exc:
        config.load(None, site="03160", server="http://x:1", token_file=tok)
    assert "chmod 600" in exc.value.render("en") and "0o644" in exc.value.render("en")
    tok.chmod(0o600)
    tok.write_text("not-a-token")
    with pytest.raises(config.AgentConfigError, match="holds no site token"):
        config.load(None, site="03160", server="http://x:1", token_file=tok)
    with pytest.raises(config.AgentConfigError, match="Cannot read the site token file"):
        config.load(None, site="03160", server="http://x:1", token_file=tmp_path / "missing")


def test_cli_exit_2_without_traceback(tmp_path: Path) -> None:
    tok = _token(tmp_path, 0o640)
    cp = subprocess.run([*MEETING, "agent", "--site", "03160", "--server", "http://127.0.0.1:9", "--token-file",
                         str(tok)], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert cp.returncode == 2
    assert "Traceback" not in cp.stderr
    assert "chmod 600" in cp.stderr and TOKEN not in cp.stderr + cp.stdout
    y = _yaml(tmp_path, "site: '03160'\n")
    cp = subprocess.run([*MEETING, "agent", "--config", str(y), "--json"], capture_output=True, text=True, cwd=REPO,
                        timeout=60)
    assert cp.returncode == 2 and "Missing server, token_file" in cp.stdout


def test_backoff_is_jittered_and_capped() -> None:
    import random

    b = Backoff(0.25, 2.0, random.Random(7))
    delays = [b.next() for _ in range(12)]
    assert all(0.125 <= d <= 2.0 for d in delays)
    assert max(delays[6:]) <= 2.0 and min(delays[6:]) >= 1.0  # at the cap: [cap/2, cap]
    assert len(set(delays)) == len(delays)  # jittered
    b.reset()
    assert b.next() <= 0.25
