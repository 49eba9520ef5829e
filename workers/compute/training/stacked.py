"""The loop every training run shares: R replicates stacked along a leading parameter axis,
stepped together by one optimizer, measured only at the record steps of a grid (one host read
there, none per step), each replicate ending on its own while the others go on."""

import time
from collections.abc import Callable
from dataclasses import dataclass

from workers.compute.networks import Params

Measure = Callable[[Params, int], list[float]]
"""(stacked parameters, record index) -> each replicate's stopping value (e.g. its loss); it
may also store whatever else it records at that index."""
Stop = Callable[[int, float, float], str | None]
"""(replicate, its value, seconds elapsed) -> why it ends here, or None to go on."""


@dataclass(frozen=True)
class Ending:
    """How one replicate ended: its status, the records it has, its steps, and its parameters."""

    status: str
    records: int
    steps: int
    seconds: float
    final: Params


def run_stacked(
    step: Callable[[int, Params], Params],
    theta: Params,
    grid: list[int],
    measure: Measure,
    stop: Stop,
    on_record: Callable[[int, list[float]], None],
) -> list[Ending]:
    """theta_{k+1} = step(k, theta_k) from the stacked `theta` until every replicate has ended:
    at each step k in `grid` (increasing, from 0) `measure` records, `on_record(k, values)`
    reports, and `stop` may end a replicate (whose parameters are kept from there); a replicate
    still going at the last grid step ends with status `steps`."""
    began = time.perf_counter()
    endings: list[Ending | None] = [None] * len(next(iter(theta.values())))
    recorded, k = 0, 0
    while True:
        if k == grid[recorded]:
            values = measure(theta, recorded)
            recorded += 1
            on_record(k, values)
            elapsed = time.perf_counter() - began
            for r, value in enumerate(values):
                if endings[r] is None:
                    status = stop(r, value, elapsed) or ("steps" if recorded == len(grid) else None)
                    if status is not None:
                        final = {
                            name: tensor[r].clone() for name, tensor in theta.items()
                        }  # not a view of the batch
                        endings[r] = Ending(status, recorded, k, elapsed, final)
            if all(endings):
                return [ending for ending in endings if ending is not None]
        theta = step(k, theta)
        k += 1
