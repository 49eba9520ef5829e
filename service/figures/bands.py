"""Replicates of one curve summarised as one series: their mean at each x, inside the band from
their smallest to their largest value there."""

from collections.abc import Sequence

from .figure import Mode, Number, Series, finite


def spread(
    name: str, curves: Sequence[tuple[Sequence[object], Sequence[object]]], mode: Mode = "lines"
) -> Series:
    """The mean of the replicates' (x, y) curves at every x any of them has (ascending), between
    the smallest and the largest of them (a band only with two replicates or more). At an x
    where no replicate has a finite y, the mean and its band are None; a replicate that ended
    early (converged, diverged) counts only where it has a value."""
    found: dict[float, list[float]] = {}
    for xs, ys in curves:
        for x, y in zip(xs, ys, strict=False):
            at = finite(x)
            if at is None:
                continue
            value = finite(y)
            found.setdefault(at, []).extend([] if value is None else [value])
    x = sorted(found)
    mean: list[Number] = [sum(found[at]) / len(found[at]) if found[at] else None for at in x]
    if len(curves) < 2:
        return Series(name, list(x), mean, mode=mode)
    low: list[Number] = [min(found[at]) if found[at] else None for at in x]
    high: list[Number] = [max(found[at]) if found[at] else None for at in x]
    return Series(name, list(x), mean, low=low, high=high, mode=mode)
