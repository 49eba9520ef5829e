"""How compute code reports progress: a callable the caller supplies.

`progress(fraction, message)` with fraction in [0, 1]. The caller may throttle it and may raise
from it (to cancel); compute code calls it between steps, never inside a device kernel.
"""

from collections.abc import Callable

Progress = Callable[[float, str], None]


def silent(_fraction: float, _message: str) -> None:
    """A progress callback that ignores everything (tests, benchmarks)."""
