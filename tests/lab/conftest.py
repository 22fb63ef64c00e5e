"""Lab fixtures for tests/lab, defined in tests/lab/fixtures.py so other test trees can load them as a plugin
(`pytest_plugins = ["tests.lab.fixtures"]`). The helpers are re-exported here for modules that import them
from `tests.lab.conftest`."""

from tests.lab.fixtures import CONFTOOL, REPO, LabSession, lab, lab_session, machine_snapshot

__all__ = ["CONFTOOL", "REPO", "LabSession", "lab", "lab_session", "machine_snapshot"]
