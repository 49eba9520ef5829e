"""Activation patterns of a ReLU layer on fixed points: the diagonal matrices D = diag(1[X g >= 0])
over all directions g (Pilanci & Ergen 2020), enumerated exactly or sampled."""

import itertools
import math
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


VERTEX_ROWS_MAX = 2_000_000
"""Most candidate patterns (rays x sign choices) the vertex enumeration builds at once (each a
row of n booleans); beyond it the incremental LP route runs."""
GENERAL = 1e-9
"""Relative size under which a singular value or a product x_j.v counts as zero: the points are
then not in general position for the vertex enumeration."""


def exact_patterns(X: NDArray[np.float64]) -> Masks:
    """Every pattern 1[X g >= 0] of an open region of the central arrangement {x_i.g = 0}. Zero
    rows are active everywhere (relu(0) = 0: it does not matter). Points in general position
    go by their vertices (`vertex_patterns`), whose count Cover's formula certifies; any other
    points, or too many candidates, by adding hyperplanes one LP at a time
    (`incremental_patterns`)."""
    live = np.flatnonzero(np.any(X != 0, axis=1))
    signs = vertex_patterns(X[live])
    if signs is None:
        return incremental_patterns(X)
    masks = np.ones((len(signs), X.shape[0]), dtype=bool)
    masks[:, live] = signs
    return masks


def vertex_patterns(X: NDArray[np.float64]) -> Masks | None:
    """The patterns of the regions of {x_i.g = 0} (X: (n, d), no zero row) read off the rays
    where d - 1 of the hyperplanes meet, or None when the points are not in general position
    or the candidates would exceed VERTEX_ROWS_MAX.

    In general position (every d rows independent, so exactly d - 1 hyperplanes through each such
    ray v), every region is a pointed cone whose closure holds such a ray, and beside +-v every
    one of the 2^(d-1) sign choices on its d - 1 hyperplanes is a region, the other rows keeping
    the sign of x_j.v. Then there are exactly 2 sum_{k<d} C(n-1, k) regions (Cover 1965): the
    distinct patterns found are checked against that count, a certificate that none is missing.
    C(n, d-1) rays in all, vectorised: no LP."""
    n, d = X.shape
    if n < d or math.comb(n, d - 1) * 2**d > VERTEX_ROWS_MAX:
        return None
    if d == 1:
        return np.stack([X[:, 0] > 0, X[:, 0] < 0])
    subsets = np.array(list(itertools.combinations(range(n), d - 1)))  # (C, d - 1)
    _, singular, Vh = np.linalg.svd(X[subsets])  # (C, d - 1, d): v spans each null space
    if singular[:, -1].min() <= GENERAL * singular[:, 0].max():
        return None
    v = Vh[:, -1, :]  # (C, d), unit
    at = v @ X.T  # (C, n): x_j.v, zero on the subset's own rows
    outside = np.ones_like(at, dtype=bool)
    np.put_along_axis(outside, subsets, False, axis=1)
    if np.abs(at[outside]).min() <= GENERAL * np.linalg.norm(X, axis=1).max():
        return None
    choices = np.array(list(itertools.product((False, True), repeat=d - 1)))  # (2^(d-1), d - 1)
    found = []
    for ray in (at > 0, at < 0):  # +v, -v
        masks = np.repeat(ray[:, None, :], len(choices), axis=1)  # (C, 2^(d-1), n)
        shape = (*masks.shape[:2], d - 1)
        np.put_along_axis(
            masks, np.broadcast_to(subsets[:, None, :], shape), np.broadcast_to(choices, shape), axis=2
        )
        found.append(masks.reshape(-1, n))
    masks = distinct(np.concatenate(found))
    return masks if len(masks) == pattern_bound(n, d) else None


def distinct(masks: Masks) -> Masks:
    """The distinct rows of masks (P, n), in some order: each row packed into bytes and compared
    as one opaque value (a sort of P keys, not of P x n booleans)."""
    packed = np.ascontiguousarray(np.packbits(masks, axis=1))
    keys = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
    _, first = np.unique(keys, return_index=True)
    return masks[first]


def incremental_patterns(X: NDArray[np.float64]) -> Masks:
    """Every pattern of the arrangement by adding the hyperplanes one at a time: each region
    found so far keeps its witness g, which decides its side of the next hyperplane; one LP asks
    whether the other side is nonempty too (the region is then split). About (regions) x n LPs
    in all, at most 2 sum_{k<d} C(n-1, k) regions (Cover 1965); any points."""
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
