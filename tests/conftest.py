"""Fixtures live in small plugin modules under tests/fixtures/."""

from __future__ import annotations

import pytest

pytest_plugins = [
    "tests.fixtures.services",
    "tests.fixtures.database",
    "tests.fixtures.policy",
    "tests.fixtures.arx",
    "tests.fixtures.saml_idp",
    "tests.fixtures.hydra",
    "tests.fixtures.signin",
    "tests.fixtures.browser",
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
