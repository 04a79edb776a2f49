"""Fixtures for the staff pages: fixed personas at PDX (alice, coordinator) and NYC (bob), an investigator at PDX,
and a way to move a participant's visits through the real services."""

from __future__ import annotations

import pytest

from tests.factories import staff
from trialsite.roles import Role

PASSWORD = "correct horse battery staple"  # tests.factories.UserFactory's password


@pytest.fixture
def ivy(pdx):
    """Investigator at PDX."""
    return staff("ivy", Role.INVESTIGATOR, pdx)


def page_text(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


@pytest.fixture
def world(db):
    """The walks' world (tests/dashboard/world.py): a double-blind study at PDX and NYC with unique arm strings."""
    from tests.dashboard.world import build_world

    return build_world()
