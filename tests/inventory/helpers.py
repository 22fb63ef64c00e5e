"""Small builders for inventory tests: copy the reference inventory and edit one file the way an engineer would."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from conftool.inventory.yamlio import dump_yaml

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "inventory" / "dien-bien"
DISTRICT_FILE = "sites/096-muong-nhe.yml"


def copy_reference(dst: Path) -> Path:
    out = dst / "inv"
    shutil.copytree(REFERENCE, out)
    return out


def edit_yaml(path: Path, change: Callable[[Any], None]) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(dump_yaml(data), encoding="utf-8")
