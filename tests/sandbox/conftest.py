from __future__ import annotations

import pytest

from .backends import ALL_KINDS, Backends


@pytest.fixture(scope="session")
def backends():
    b = Backends()
    yield b
    b.close()


@pytest.fixture(params=ALL_KINDS)
def box(request, backends):
    """Each conformance test runs against every backend."""
    return backends.get(request.param)
