"""The loop every training run shares: R replicates stacked along a leading parameter axis,
stepped together by one optimizer, measured only at the record steps of a grid (one host read
there, none per step), each replicate ending on its own while the others go on; and which
replicates of a job run stacked."""

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from schemas.experiments import TrainSpec
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


CPU_STACK_MAX = 2**22
"""On a CPU, replicates run stacked while their stacked hidden activations (R, n, m) hold at
most this many entries: measured (bench/train.py, 2 cores) about 2x faster than one by one
below it, where per-step overhead dominates, and about 2x slower above it (out of cache)."""


def seed_groups(spec: TrainSpec, device: torch.device) -> list[list[int]]:
    """The replicates' seeds, grouped into the batches that run stacked: all at once when
    batched, one by one when sequential. `auto` stacks on a GPU, and on a CPU only while the
    stacked activations stay within CPU_STACK_MAX entries."""
    seeds = [spec.seed + replicate for replicate in range(spec.replicates)]
    small = spec.replicates * spec.dataset.n * spec.width <= CPU_STACK_MAX
    batched = spec.batching == "batched" or (spec.batching == "auto" and (device.type == "cuda" or small))
    return [seeds] if batched else [[seed] for seed in seeds]
