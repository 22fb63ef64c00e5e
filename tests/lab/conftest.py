"""Lab fixtures for tests/lab, defined in tests/lab/fixtures.py so other test trees can load them as a plugin
(`pytest_plugins = ["tests.lab.fixtures"]` in tests/conftest.py). The helpers are re-exported here for modules that
import them from `tests.lab.conftest`."""

from tests.lab.fixtures import CONFTOOL, REPO, LabSession, machine_snapshot

# The fixtures themselves (lab_session, lab) come from tests/conftest.py's pytest_plugins, registered once, so
# every test tree shares ONE session lab.
__all__ = ["CONFTOOL", "REPO", "LabSession", "machine_snapshot"]
