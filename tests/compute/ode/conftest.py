"""Fixtures for the ode tests."""

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """These problems are small (n = 16): one intra-op thread is as fast as two on an idle
    machine, and on a loaded one it avoids threads waiting for a descheduled partner (measured
    10x slower with two). The answers do not depend on it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
