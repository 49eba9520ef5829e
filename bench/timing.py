"""The benchmarks' clock: the best of REPEATS calls after one warm-up call, queued device work
included (`python bench/<name>.py` puts this folder on the import path)."""

import math
import statistics
import time
from collections.abc import Callable
from typing import TypeVar

import torch

from workers.compute.device import synchronize

REPEATS = 3
R = TypeVar("R")


def best_time(compute: Callable[[], R], device: torch.device | None = None) -> tuple[float, R]:
    """Best wall-clock seconds of REPEATS calls after one warm-up call, and the last result."""
    result = compute()
    seconds = math.inf
    for _ in range(REPEATS):
        if device is not None:
            synchronize(device)
        start = time.perf_counter()
        result = compute()
        if device is not None:
            synchronize(device)
        seconds = min(seconds, time.perf_counter() - start)
    return seconds, result


def median_ms(call: Callable[[], object], calls: int) -> float:
    """Median wall-clock milliseconds of `calls` calls: for reads of a millisecond or less, where
    the best of a few says little."""
    seconds = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return 1000 * statistics.median(seconds)
