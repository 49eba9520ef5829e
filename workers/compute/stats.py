"""Small statistics every experiment uses: least-squares lines, log-log slopes, and the mean and
spread of replicates."""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from schemas.results import Spread


@dataclass(frozen=True)
class Line:
    """Least-squares line y ~ a + slope x with its residual and total sums of squares."""

    slope: float
    ss_res: float
    ss_tot: float

    @property
    def r2(self) -> float:
        if self.ss_tot <= 0:
            return 0.0
        return min(1.0, max(0.0, 1.0 - self.ss_res / self.ss_tot))


def fit_line(x: np.ndarray, y: np.ndarray) -> Line:
    """Ordinary least squares on centred data (stable for steps far from 0). x, y: (m,), m >= 2."""
    xc = x - x.mean()
    yc = y - y.mean()
    slope = float(xc @ yc / (xc @ xc))
    resid = yc - slope * xc
    return Line(slope, float(resid @ resid), float(yc @ yc))


def log_slope(x: Sequence[float], y: Sequence[float]) -> float:
    """The exponent p of y ~ x^p: the least-squares slope of log y on log x (y floored at 1e-300
    so that an exact zero counts as tiny)."""
    return fit_line(np.log(np.asarray(x, dtype=np.float64)), np.log(np.maximum(y, 1e-300))).slope


def spread(values: list[float]) -> Spread:
    """Mean and sample standard deviation (ddof 1; 0 for a single value) of replicates."""
    tensor = torch.tensor(values, dtype=torch.float64)
    return Spread(mean=float(tensor.mean()), std=float(tensor.std()) if len(values) > 1 else 0.0)
