"""Activation patterns of a ReLU layer on fixed points: the diagonal matrices D = diag(1[X g >= 0])
over all directions g (Pilanci & Ergen 2020), enumerated exactly or sampled."""

import time

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linprog

from schemas.convex import ReluProgram, pattern_bound
from schemas.convex_results import PatternReport

Masks = NDArray[np.bool_]  # (P, n): row i is the diagonal of D_i


def _witness(signs: NDArray[np.float64], X: NDArray[np.float64]) -> NDArray[np.float64] | None:
    """A direction g with signs_i x_i.g >= 1 for every row, or None when there is none (the
    open cone {g : signs_i x_i.g > 0} is empty; the LP is scale-free, so 1 is no restriction)."""
    d = X.shape[1]
    result = linprog(
        np.zeros(d),
        A_ub=-(signs[:, None] * X),
        b_ub=-np.ones(len(signs)),
        bounds=(None, None),
        method="highs",
    )
    if result.status == 2:
        return None
    if result.status != 0:
        raise ValueError(f"pattern enumeration: the linear program failed ({result.message})")
    return np.asarray(result.x)


def _lifted(
    g: NDArray[np.float64], signs: NDArray[np.float64], X: NDArray[np.float64]
) -> NDArray[np.float64]:
    """g rescaled so that signs_i x_i.g >= 1 again (g already satisfies them with > 0)."""
    return g / min(1.0, float((signs * (X @ g)).min()))


def exact_patterns(X: NDArray[np.float64]) -> Masks:
    """Every pattern 1[X g >= 0] of an open region of the central arrangement {x_i.g = 0}, by
    adding the hyperplanes one at a time: each region found so far keeps its witness g, which
    decides its side of the next hyperplane; one LP asks whether the other side is nonempty too
    (the region is then split). About (regions) x n LPs in all, at most 2 sum_{k<d} C(n-1, k)
    regions (Cover 1965). Zero rows are active everywhere (relu(0) = 0: it does not matter)."""
    n = X.shape[0]
    live = [i for i in range(n) if np.any(X[i] != 0)]
    regions: list[tuple[NDArray[np.float64], NDArray[np.float64]]] = [(np.zeros(0), np.zeros(X.shape[1]))]
    for count, i in enumerate(live):
        rows = X[live[: count + 1]]
        grown = []
        for signs, g in regions:
            side = float(np.sign(X[i] @ g))
            if side != 0:
                kept = np.append(signs, side)
                grown.append((kept, _lifted(g, kept, rows)))
            for sign in (-side,) if side != 0 else (1.0, -1.0):
                split = np.append(signs, sign)
                witness = _witness(split, rows)
                if witness is not None:
                    grown.append((split, witness))
        regions = grown
    masks = np.ones((len(regions), n), dtype=bool)
    for row, (signs, _g) in enumerate(regions):
        masks[row, live] = signs > 0
    return masks


def sampled_patterns(X: NDArray[np.float64], samples: int, seed: int) -> Masks:
    """The distinct patterns 1[X g >= 0] of `samples` directions g ~ N(0, I_d) (seeded)."""
    g = np.random.default_rng(seed).standard_normal((samples, X.shape[1]))
    return np.unique((X @ g.T >= 0).T, axis=0)


def nonzero(masks: Masks) -> Masks:
    """Drop the all-zero pattern: its neurons output nothing, so they only add penalty."""
    return masks[masks.any(axis=1)]


def patterns_of(program: ReluProgram, X: np.ndarray) -> tuple[np.ndarray, PatternReport]:
    """The nonzero activation patterns the program ranges over (masks (P, n)) and their report."""
    began = time.perf_counter()
    if program.patterns == "exact":
        masks = nonzero(exact_patterns(X))
    else:
        masks = nonzero(sampled_patterns(X, program.samples, program.pattern_seed))
    report = PatternReport(
        mode=program.patterns,
        count=len(masks),
        bound=pattern_bound(*X.shape),
        samples=program.samples if program.patterns == "sampled" else None,
        seconds=time.perf_counter() - began,
    )
    return masks, report
