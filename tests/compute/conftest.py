"""Fixtures for the compute tests."""

import pytest

from .precision import PRECISIONS, Precision


@pytest.fixture(params=PRECISIONS, ids=[precision.id for precision in PRECISIONS])
def precision(request: pytest.FixtureRequest) -> Precision:
    """One dtype on one device, with the tolerance that goes with the dtype: a test that takes
    it runs once for each (see tests/compute/precision.py)."""
    return request.param
