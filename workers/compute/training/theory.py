"""The per-step loss factor theory predicts from a kernel spectrum, for each optimizer.

In the NTK regime the residual `e = u - y` evolves linearly under the kernel H (eigenvalues
`lambda_i`), and the loss is `1/2 |e|^2`. Each eigen-mode follows a scalar recursion:
- GD, `w+ = w - eta g`: `e_{k+1} = (1 - eta lambda) e_k`;
- heavy ball (Polyak 1964), `w_{k+1} = w_k - eta g_k + beta (w_k - w_{k-1})`:
  `e_{k+1} = (1 + beta - eta lambda) e_k - beta e_{k-1}`, characteristic polynomial
  `r^2 - (1 + beta - eta lambda) r + beta`;
- Nesterov (1983), `y_k = w_k + beta_k (w_k - w_{k-1})`, `w_{k+1} = y_k - eta g(y_k)`:
  `e_{k+1} = (1 - eta lambda)((1 + beta) e_k - beta e_{k-1})`, characteristic polynomial
  `r^2 - (1 + beta)(1 - eta lambda) r + beta (1 - eta lambda)`.
A mode's error shrinks by the largest root modulus |r| per step, so the loss factor is
`max_i |r_i|^2`: the asymptotic factor once the slowest excited mode dominates, assuming the
initial residual excites every mode. Above 1 the iteration diverges. Eigenvalues below 0 are
round-off of a positive semi-definite kernel and count as 0. See Bu, Xu, Chen (AISTATS 2021)
and docs/science.md §1.
"""

import math
from typing import NamedTuple

import numpy as np
import torch

from schemas.results import PredictedRate

ArrayLike = torch.Tensor | np.ndarray | list[float]


class AutoHyper(NamedTuple):
    """Hyperparameters chosen from a spectrum, and why (one line for the result)."""

    lr: float
    momentum: float
    reason: str


def spectrum(eigenvalues: ArrayLike) -> np.ndarray:
    """The eigenvalues as float64 numpy on the CPU, negative round-off clamped to 0. (n,)"""
    if isinstance(eigenvalues, torch.Tensor):
        eigenvalues = eigenvalues.detach().to(device="cpu", dtype=torch.float64).numpy()
    values = np.asarray(eigenvalues, dtype=np.float64).reshape(-1)
    if len(values) == 0 or not np.all(np.isfinite(values)):
        raise ValueError("the kernel spectrum must be a non-empty list of finite eigenvalues")
    return np.maximum(values, 0.0)


def largest_root_modulus(b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """max |r| over the roots of r^2 - b r + c = 0 (real b, c), elementwise: `(|b| + sqrt(D))/2`
    for real roots (D = b^2 - 4c >= 0), `sqrt(c)` for a complex pair (|r|^2 = r r* = c)."""
    disc = b * b - 4.0 * c
    real = (np.abs(b) + np.sqrt(np.maximum(disc, 0.0))) / 2.0
    return np.where(disc >= 0, real, np.sqrt(np.maximum(c, 0.0)))


def _check(lr: float, momentum: float = 0.0) -> None:
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"the step size must be a finite number > 0, got {lr}")
    if not (0.0 <= momentum < 1.0):
        raise ValueError(f"the momentum must be in [0, 1), got {momentum}")


def _predicted(factors: np.ndarray, formula: str, kernel: str) -> PredictedRate:
    rate = float(np.max(factors))
    return PredictedRate(rate=rate if math.isfinite(rate) else None, formula=formula, kernel=kernel)


def gd_rate(eigenvalues: ArrayLike, lr: float, kernel: str) -> PredictedRate:
    """GD with step eta: loss factor `max_i (1 - eta lambda_i)^2`, i.e.
    `max((1 - eta lambda_min)^2, (1 - eta lambda_max)^2)`; below 1 iff `0 < eta < 2/lambda_max`
    and `lambda_min > 0` (Du et al. 2019 for the NTK setting)."""
    _check(lr)
    lam = spectrum(eigenvalues)
    return _predicted((1.0 - lr * lam) ** 2, "gd: max (1 - eta lambda)^2", kernel)


def heavy_ball_rate(eigenvalues: ArrayLike, lr: float, momentum: float, kernel: str) -> PredictedRate:
    """Heavy ball (Polyak 1964) with step eta and momentum beta: per mode the roots of
    `r^2 - (1 + beta - eta lambda) r + beta = 0`; loss factor `(max_i max |r|)^2`. A mode is
    under-damped (|r| = sqrt(beta)) when `(1 - sqrt beta)^2 < eta lambda < (1 + sqrt beta)^2`."""
    _check(lr, momentum)
    lam = spectrum(eigenvalues)
    modulus = largest_root_modulus(1.0 + momentum - lr * lam, np.full_like(lam, momentum))
    return _predicted(modulus**2, "heavy_ball: max |r|^2, r^2 - (1 + beta - eta lambda) r + beta = 0", kernel)


def nesterov_rate(eigenvalues: ArrayLike, lr: float, momentum: float, kernel: str) -> PredictedRate:
    """Nesterov (1983) with constant momentum beta (the strongly convex variant): per mode the
    roots of `r^2 - (1 + beta)(1 - eta lambda) r + beta (1 - eta lambda) = 0`; loss factor
    `(max_i max |r|)^2`. Linear, as the high-resolution ODE says (Liu et al., arXiv 2208.03941)."""
    _check(lr, momentum)
    lam = spectrum(eigenvalues)
    a = 1.0 - lr * lam
    modulus = largest_root_modulus((1.0 + momentum) * a, momentum * a)
    return _predicted(
        modulus**2,
        "nesterov: max |r|^2, r^2 - (1 + beta)(1 - eta lambda) r + beta (1 - eta lambda) = 0",
        kernel,
    )


def nesterov_scheduled_rate(eigenvalues: ArrayLike, lr: float, kernel: str) -> PredictedRate:
    """Nesterov with momentum `beta_k = (k-1)/(k+2)` at a fixed step eta: the asymptote after a
    power-law phase. While `k sqrt(eta lambda_min)` is small the loss follows the ODE
    `e'' + (3/t) e' + H e = 0` (Su, Boyd, Candes 2016), loss ~ k^-3 (Bu, Xu, Chen 2021: sublinear).
    As `beta_k -> 1` the roots of `r^2 - 2(1 - eta lambda) r + (1 - eta lambda)` take over: a
    complex pair of modulus^2 `1 - eta lambda` when `0 <= eta lambda <= 1`, so the loss factor
    tends to `1 - eta lambda_min`, slower than GD's `(1 - eta lambda_min)^2` (docs/science.md §1).
    At finite k the factor is about `(1 - 3/k)(1 - eta lambda_min)`."""
    _check(lr)
    lam = spectrum(eigenvalues)
    a = 1.0 - lr * lam
    modulus = largest_root_modulus(2.0 * a, a)
    return _predicted(
        modulus**2,
        "nesterov (k-1)/(k+2): asymptote after a power-law phase, "
        "max |r|^2 of r^2 - 2(1 - eta lambda) r + (1 - eta lambda) = 1 - eta lambda_min",
        kernel,
    )


def _extremes(eigenvalues: ArrayLike) -> tuple[float, float]:
    lam = spectrum(eigenvalues)
    mu, big = float(lam.min()), float(lam.max())
    if not mu > 0:
        raise ValueError(
            f"lambda_min = {mu:.3g}: the kernel is singular, so no momentum is optimal; "
            "give lr and momentum by hand"
        )
    return mu, big


def auto_gd(eigenvalues: ArrayLike) -> AutoHyper:
    """GD step `eta = 1/lambda_max`: the largest step at which no mode overshoots (GD is stable
    up to `2/lambda_max`); loss factor `(1 - lambda_min/lambda_max)^2`."""
    big = float(spectrum(eigenvalues).max())
    if not big > 0:
        raise ValueError("lambda_max = 0: the kernel is zero and gradient descent cannot move")
    return AutoHyper(1.0 / big, 0.0, f"lr = 1/lambda_max = 1/{big:.6g}: no mode overshoots")


def auto_heavy_ball(eigenvalues: ArrayLike) -> AutoHyper:
    """Polyak's optimum (1964) for a spectrum in [mu, L], `kappa = L/mu`:
    `eta* = 4/(sqrt L + sqrt mu)^2`, `beta* = ((sqrt kappa - 1)/(sqrt kappa + 1))^2`. Every mode
    is then (critically or under-) damped with |r| = sqrt(beta*): the error contracts by
    `(sqrt kappa - 1)/(sqrt kappa + 1)` per step, the loss by its square."""
    mu, big = _extremes(eigenvalues)
    root = math.sqrt(big / mu)
    q = (root - 1.0) / (root + 1.0)
    lr = 4.0 / (math.sqrt(big) + math.sqrt(mu)) ** 2
    return AutoHyper(
        lr,
        q * q,
        f"Polyak's optimum for lambda in [{mu:.6g}, {big:.6g}] (kappa = {big / mu:.4g}): "
        f"lr = 4/(sqrt L + sqrt mu)^2, momentum = ((sqrt kappa - 1)/(sqrt kappa + 1))^2, "
        f"error contraction {q:.6g} per step",
    )


def auto_nesterov(eigenvalues: ArrayLike) -> AutoHyper:
    """Nesterov's constant momentum for an L-smooth, mu-strongly convex quadratic (Nesterov
    1983; 2004, section 2.2): `eta = 1/L`, `beta = (sqrt kappa - 1)/(sqrt kappa + 1)`. The mode
    lambda_min then has the double root `(1 + beta)(1 - 1/kappa)/2 = 1 - 1/sqrt kappa`, every other
    mode a smaller modulus: the error contracts by `1 - 1/sqrt kappa` per step."""
    mu, big = _extremes(eigenvalues)
    root = math.sqrt(big / mu)
    return AutoHyper(
        1.0 / big,
        (root - 1.0) / (root + 1.0),
        f"Nesterov's strongly convex choice for lambda in [{mu:.6g}, {big:.6g}] "
        f"(kappa = {big / mu:.4g}): lr = 1/L, momentum = (sqrt kappa - 1)/(sqrt kappa + 1), "
        f"error contraction {1.0 - 1.0 / root:.6g} per step",
    )
