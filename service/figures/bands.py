"""Replicates of one curve summarised as one series: their mean at each x, inside the band from
their smallest to their largest value there."""

from collections.abc import Sequence

from .figure import Mode, Number, Series, finite


def spread(
    name: str, curves: Sequence[tuple[Sequence[object], Sequence[object]]], mode: Mode = "lines"
) -> Series:
    """The mean of the replicates' (x, y) curves at every x any of them has (ascending), between
    the smallest and the largest of them (a band only with two replicates or more). At an x
    where no replicate has a finite y, the mean and its band are None. The mean stops where the
    first replicate ends (one that converged or diverged early): past it, a mean of fewer
    replicates would jump; the band goes on over those that remain."""
    found: dict[float, list[float]] = {}
    ends = []
    for xs, ys in curves:
        seen = [at for at in map(finite, xs) if at is not None]
        ends.append(max(seen, default=float("-inf")))
        for at, y in zip(map(finite, xs), ys, strict=False):
            if at is not None:
                value = finite(y)
                found.setdefault(at, []).extend([] if value is None else [value])
    x = sorted(found)
    end = min(ends, default=float("-inf"))
    mean: list[Number] = [sum(found[at]) / len(found[at]) if found[at] and at <= end else None for at in x]
    if len(curves) < 2:
        return Series(name, list(x), mean, mode=mode)
    low: list[Number] = [min(found[at]) if found[at] else None for at in x]
    high: list[Number] = [max(found[at]) if found[at] else None for at in x]
    return Series(name, list(x), mean, low=low, high=high, mode=mode)
