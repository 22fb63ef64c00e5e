"""The audit's lab fixture: the session's `small` lab, brought up fresh for this module and taken down after it.

One lab on the machine at a time, also across test processes: `lab_session` (tests/lab/fixtures.py) holds the lock.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.lab.conftest import LabSession


@pytest.fixture(scope="module")
def audit_lab(lab_session: LabSession) -> Iterator[LabSession]:
    """The session's one lab (under the cross-process lab lock), fresh for this module and down after it."""
    if lab_session.is_up:
        lab_session.down()
    lab_session.up()
    yield lab_session
    lab_session.down()
