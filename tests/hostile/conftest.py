from __future__ import annotations

import pytest

from tests.sandbox.backends import Backends


@pytest.fixture(scope="session")
def backends():
    b = Backends()
    yield b
    b.close()
