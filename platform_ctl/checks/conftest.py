"""Fixtures shared by the shipped checks."""

from __future__ import annotations

import pytest


@pytest.fixture
def hostvars(host):
    """The inventory variables of the host under test."""
    return host.ansible.get_variables()
