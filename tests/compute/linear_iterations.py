"""The exact linear iterations of GD, heavy ball and Nesterov on a quadratic loss, mode by mode
in the kernel's eigenbasis, for the rate tests: a Wishart spectrum to run them on, and the
recursion run long without underflow."""

import math
from collections.abc import Callable

import numpy as np

Update = Callable[[np.ndarray, np.ndarray, int], np.ndarray]


def random_spectrum(n: int = 24, m: int = 72, seed: int = 7) -> np.ndarray:
    """Eigenvalues of A A^T / m for a Gaussian A (n, m): a Wishart spectrum (kappa 9.5 for the default)."""
    A = np.random.default_rng(seed).standard_normal((n, m))
    return np.linalg.eigvalsh(A @ A.T / m)


LAM = random_spectrum()
E0 = np.random.default_rng(8).standard_normal(len(LAM))  # residual in the eigenbasis: all modes


def simulate(update: Update, steps: int, e0: np.ndarray = E0) -> tuple[np.ndarray, np.ndarray]:
    """Run e_{k+1} = update(e_k, e_{k-1}, k) from e_0 = e_{-1} = e0 (zero velocity), rescaling
    the state every step (the recursion is linear) to stay clear of underflow. Returns log loss
    and log |e| at k = 0..steps, with loss = |e|^2 / 2."""
    e, previous, scale = e0.copy(), e0.copy(), 0.0
    log_norm = np.empty(steps + 1)
    for k in range(steps + 1):
        norm = np.linalg.norm(e)
        log_norm[k] = math.log(norm) + scale
        e, previous, scale = e / norm, previous / norm, scale + math.log(norm)
        e, previous = update(e, previous, k), e
    return 2 * log_norm - math.log(2.0), log_norm


def gd(lr: float) -> Update:
    return lambda e, _previous, _k: (1 - lr * LAM) * e


def heavy_ball(lr: float, beta: float) -> Update:
    return lambda e, previous, _k: (1 + beta - lr * LAM) * e - beta * previous


def nesterov(lr: float, beta: Callable[[int], float], lam: np.ndarray = LAM) -> Update:
    return lambda e, previous, k: (1 - lr * lam) * ((1 + beta(k)) * e - beta(k) * previous)


def schedule(k: int) -> float:
    """Nesterov's momentum (k-1)/(k+2) (0 at the first step)."""
    return max(0.0, (k - 1) / (k + 2))
