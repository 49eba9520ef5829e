"""Data the API can see is degenerate before any worker runs: labels that are all zero, inputs
that are all zero (every kernel of a bias-free net is then zero), and training inputs that make
every tangent kernel singular. Only data sent in the request (`inline`) is looked at: generated
and bundled datasets are known only once a worker loads them, and fail there with a message.

Why a repeated direction makes the kernel singular: without biases (every net but a
`fully_connected` one with b_std > 0), and sigma(0) = 0 for every activation, a zero input has a
zero gradient (a zero row and column of K). ReLU and quadratic nets without biases are positively
homogeneous, f(c x) = c^p f(x) for c > 0, so two inputs on one ray have proportional gradients and
proportional rows of K; any net gives equal rows for equal inputs. lambda_min is then 0, and whatever is chosen from it (Polyak's momentum,
critical damping) does not exist.
"""

from schemas.datasets import DatasetSpec, InlineDataset
from schemas.networks import NetworkSpec

HOMOGENEOUS = {"relu", "quadratic"}
DIRECTION_DIGITS = 12
"""Directions that agree to 12 digits count as one: their kernel rows agree to ~1e-12, so its
lambda_min is rounding noise (~1e-16 |K|) however the rest of the data lies."""


def zero_labels(dataset: DatasetSpec) -> str | None:
    """Why the labels cannot be aligned with or fitted, or None."""
    if isinstance(dataset, InlineDataset) and not any(dataset.y):
        return "dataset.y is all zero: there is nothing to fit"
    return None


def zero_inputs(dataset: DatasetSpec) -> str | None:
    """Why every kernel of the data is zero, or None."""
    if isinstance(dataset, InlineDataset) and not any(any(row) for row in dataset.X):
        return "dataset.X is all zero: every kernel of a bias-free net is zero"
    return None


def singular_kernel(dataset: DatasetSpec, network: NetworkSpec) -> str | None:
    """Why every tangent kernel of the training inputs is singular (a zero row, two equal rows,
    or for a homogeneous activation two rows on one ray), or None. With a held-out split the
    training rows are drawn by the worker, so only the unsplit data is judged here."""
    if not isinstance(dataset, InlineDataset) or dataset.test_fraction > 0:
        return None
    homogeneous = network.activation in HOMOGENEOUS and not network.has_biases
    seen: dict[tuple[float, ...], int] = {}
    for i, row in enumerate(dataset.X):
        norm = sum(value * value for value in row) ** 0.5
        if norm == 0 and not network.has_biases:
            return f"dataset.X row {i} is zero: its kernel row is zero, so lambda_min = 0"
        key = tuple(round(value / norm, DIRECTION_DIGITS) for value in row) if homogeneous else tuple(row)
        if key in seen:
            how = "point the same way" if homogeneous else "are equal"
            return f"dataset.X rows {seen[key]} and {i} {how}: their kernel rows agree, so lambda_min = 0"
        seen[key] = i
    return None
