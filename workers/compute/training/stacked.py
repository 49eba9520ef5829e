"""The loop every training run shares: R replicates stacked along a leading parameter axis,
stepped together by one optimizer, measured only at the record steps of a grid, each replicate
ending on its own while the others go on; and which replicates of a job run stacked.

A target (a loss at or below a tolerance) is checked at every step on the device: each step
updates `stopped` (R,), the first step whose loss was at or below it (a few elementwise
operations on R numbers), and a replicate that got there is frozen (its parameters kept, one
`torch.where` per parameter) while the others go on. The host reads `stopped` only where it already syncs (at the record steps) and
every CHECK_EVERY steps in between, never once a step; so the step at which a run converged,
and its final parameters, do not depend on the record grid. Other stop rules (divergence, the
wall-clock budget) are decided on the recorded values, at the record steps."""

import bisect
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from schemas.experiments import TrainSpec
from workers.compute.networks import Params

Stepped = tuple[Params, torch.Tensor | None]
"""theta_{k+1}, and the (R,) loss at theta_k when the step evaluated it (None when it did not)."""
Measure = Callable[[Params, int], list[float]]
"""(stacked parameters, record index) -> each replicate's stopping value (e.g. its loss); it
may also store whatever else it records at that index."""
Stop = Callable[[int, float, float], str | None]
"""(replicate, its value, seconds elapsed) -> why it ends here, or None to go on."""
NEVER = 2**62
"""`stopped` of a replicate that has not reached the target."""
CHECK_EVERY = 64
"""Most steps between two host reads of the target flags: a converged replicate costs at most
this many wasted (frozen) steps, and a GPU one sync per block."""


@dataclass(frozen=True)
class Target:
    """A stop rule checked at every step. `below(k, theta_k, loss_k)`: (R,) bool, whether each
    replicate's loss at theta_k is at or below the target (loss_k: the (R,) loss the step
    evaluated at theta_k, or None when it did not, and it must be computed). `record(theta,
    rows)`: record the final point of the replicates `rows`, which reached the target at a step
    off the grid (their parameters frozen there), in the slot after the grid's."""

    below: Callable[[int, Params, torch.Tensor | None], torch.Tensor]
    record: Callable[[Params, list[int]], None]


@dataclass(frozen=True)
class Ending:
    """How one replicate ended: its status, the grid records it keeps (the first `records`),
    whether a final record off the grid follows them (at step `steps`), its steps, its clock and
    its parameters."""

    status: str
    records: int
    steps: int
    seconds: float
    final: Params
    extra: bool = False


def _frozen(done: torch.Tensor, kept: Params, moved: Params) -> Params:
    """Each parameter from `kept` for the replicates that are done, else from `moved`."""
    return {
        name: torch.where(done.view(-1, *[1] * (value.dim() - 1)), kept[name], value)
        for name, value in moved.items()
    }


def run_stacked(
    step: Callable[[int, Params], Stepped],
    theta: Params,
    grid: list[int],
    measure: Measure,
    stop: Stop,
    on_record: Callable[[int, list[float]], None],
    target: Target | None = None,
) -> list[Ending]:
    """theta_{k+1} = step(k, theta_k) from the stacked `theta` until every replicate has ended:
    at each step k in `grid` (increasing, from 0) `measure` records, `on_record(k, values)`
    reports, and `stop` may end a replicate (whose parameters are kept from there); a replicate
    still going at the last grid step ends with status `steps`. With a `target`, a replicate
    whose loss at step s is at or below it ends `converged` at s (module docstring): its
    records are the grid's up to s, plus one at s when s is off the grid."""
    began = time.perf_counter()
    replicates = len(next(iter(theta.values())))
    device = next(iter(theta.values())).device
    endings: list[Ending | None] = [None] * replicates
    stopped = torch.full((replicates,), NEVER, dtype=torch.long, device=device)
    recorded, k, read = 0, 0, 0

    def flag(k: int, below: torch.Tensor) -> torch.Tensor:
        """Fold step k's check (R,) into `stopped`; (R,) bool: done by step k."""
        nonlocal stopped
        stopped = torch.where(below & (stopped == NEVER), k, stopped)
        return stopped <= k

    def converge(target: Target, elapsed: float) -> None:
        """End the replicates the target flags say converged (one host read)."""
        at = stopped.tolist()
        newly = [r for r, s in enumerate(at) if s != NEVER and endings[r] is None]
        off_grid = [r for r in newly if at[r] not in grid]
        if off_grid:
            target.record(theta, off_grid)
        for r in newly:
            final = {name: tensor[r].clone() for name, tensor in theta.items()}  # frozen at at[r]
            records = bisect.bisect_right(grid, at[r])
            endings[r] = Ending("converged", records, at[r], elapsed, final, extra=r in off_grid)

    while True:
        on_grid = k == grid[recorded]
        last = on_grid and recorded == len(grid) - 1
        if on_grid:
            values = measure(theta, recorded)
            recorded += 1
            on_record(k, values)
        if target is not None:
            if last:  # the last step is checked too, though no step follows it
                flag(k, target.below(k, theta, None))
            if on_grid or k - read >= CHECK_EVERY:
                converge(target, time.perf_counter() - began)
                read = k
        if on_grid:
            elapsed = time.perf_counter() - began
            for r, value in enumerate(values):
                if endings[r] is None:
                    status = stop(r, value, elapsed) or ("steps" if last else None)
                    if status is not None:
                        final = {
                            name: tensor[r].clone() for name, tensor in theta.items()
                        }  # not a view of the batch
                        endings[r] = Ending(status, recorded, k, elapsed, final)
        if all(endings):
            return [ending for ending in endings if ending is not None]
        moved, loss = step(k, theta)
        theta = moved if target is None else _frozen(flag(k, target.below(k, theta, loss)), theta, moved)
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
