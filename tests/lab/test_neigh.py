"""The kernel neighbour-table caps: raised only when a lab needs more, restored exactly at `down`.

Pure logic on a copy of the sysctl files (the real root-namespace values are checked around the full-profile lab
in tests/lab/test_full.py, which really raises them)."""

from __future__ import annotations

from pathlib import Path

from conftool.lab import neigh
from conftool.lab.state import LabState


def _sysctls(tmp_path: Path, thresh2: int = 512, thresh3: int = 1024) -> Path:
    d = tmp_path / "neigh"
    d.mkdir()
    (d / "gc_thresh2").write_text(f"{thresh2}\n")
    (d / "gc_thresh3").write_text(f"{thresh3}\n")
    return d


def test_small_lab_leaves_the_kernel_alone(tmp_path: Path) -> None:
    d = _sysctls(tmp_path)
    assert neigh.raise_for(12, d) == {}
    assert neigh.read(d) == {"gc_thresh2": 512, "gc_thresh3": 1024}


def test_full_lab_raises_then_restores_exactly(tmp_path: Path) -> None:
    d = _sysctls(tmp_path)
    old = neigh.raise_for(140 + 130, d)
    assert old == {"gc_thresh3": 1024, "gc_thresh2": 512}
    now = neigh.read(d)
    assert now["gc_thresh3"] >= 2 * 1100 and now["gc_thresh2"] < now["gc_thresh3"]
    neigh.restore(old, d)
    assert neigh.read(d) == {"gc_thresh2": 512, "gc_thresh3": 1024}


def test_a_machine_already_tuned_higher_is_not_lowered(tmp_path: Path) -> None:
    d = _sysctls(tmp_path, thresh2=100_000, thresh3=200_000)
    assert neigh.raise_for(270, d) == {}
    assert neigh.read(d) == {"gc_thresh2": 100_000, "gc_thresh3": 200_000}


def test_old_values_survive_in_the_lab_state(tmp_path: Path) -> None:
    """`down` from another process (or after a crash) reads them back from the state file."""
    st = LabState(path=tmp_path / "lab.json", sysctls={"gc_thresh3": 1024})
    st.save()
    loaded = LabState.load(tmp_path / "lab.json")
    assert loaded is not None and loaded.sysctls == {"gc_thresh3": 1024}
