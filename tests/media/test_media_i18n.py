"""Every Vietnamese message of the media plane, the signaling socket and the room agent has its English text."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from meeting.api.routes.ws import CLOSE_CODES, REASONS
from meeting.i18n import MEDIA_EN, translate

REPO = Path(__file__).resolve().parents[2]
RAISERS = {"AgentConfigError", "Unreachable", "MeetingGone", "AgentError", "SignalingError", "MediaError",
           "TokenRejected", "PassthroughError"}


def _msgids() -> set[str]:
    files = [*(REPO / "meeting" / "agent").glob("*.py"), *(REPO / "meeting" / "media").glob("*.py")]
    ids: set[str] = set(REASONS.values())
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
                first = node.args[0] if node.args else None
                if name in RAISERS and isinstance(first, ast.Constant) and isinstance(first.value, str):
                    ids.add(first.value)
            elif (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
                  and any(isinstance(t, ast.Name) and t.id.endswith("_MSG") for t in node.targets)):
                ids.add(str(node.value.value))
    return {i for i in ids if re.search(r"[^\x00-\x7f]", i)}


def test_every_media_and_agent_msgid_has_english() -> None:
    ids = _msgids()
    assert len(ids) > 40
    missing = sorted(i for i in ids if translate(i, "en") == i)
    assert not missing, missing


def test_placeholders_match_and_no_stale_entries() -> None:
    ids = _msgids()
    for vi, en in MEDIA_EN.items():
        assert set(re.findall(r"{(\w+)}", vi)) == set(re.findall(r"{(\w+)}", en)), vi
    assert set(MEDIA_EN) - ids == set()


def test_every_refusal_has_a_close_code_and_a_reason() -> None:
    assert set(CLOSE_CODES) == set(REASONS)
    assert all(4000 <= c < 5000 for c in CLOSE_CODES.values())
