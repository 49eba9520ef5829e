"""L-BFGS on the comparison's objective: torch.optim.LBFGS (Nocedal & Wright 2006, alg. 7.4, the
two-loop recursion over `history` pairs) with its strong-Wolfe line search (their alg. 3.5-3.6),
in float64, one replicate at a time, since each line search is its own: a shared step would
couple the replicates. A step is one iteration; the replicates advance in turn from one record
step of the grid to the next, where each may stop on its own, as the stacked optimizers do."""

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from workers.compute.convex.nonconvex import Outcome, Setup, stop
from workers.compute.networks import Params

LINE_SEARCH_EVALUATIONS = 25
"""Evaluations one strong-Wolfe search may take (torch's own default), so a run of k iterations
may take up to k x this many: never the limit in practice (measured: 1-2 per iteration)."""


class Replicate:
    """One start's L-BFGS run on the trained objective, its iterations and evaluations counted by
    the optimizer. Its tolerances are zero: a run ends on the objective (`stop`) or when the
    method cannot move (a zero step or a direction that does not descend: `stalled`)."""

    def __init__(self, setup: Setup, hyper: dict[str, Any], theta: Params) -> None:
        self.setup = setup
        self.leaves = {name: value.detach().clone().requires_grad_() for name, value in theta.items()}
        self.optimizer = torch.optim.LBFGS(
            list(self.leaves.values()),
            lr=hyper["lr"],
            history_size=hyper["history"],
            tolerance_grad=0.0,
            tolerance_change=0.0,
            line_search_fn="strong_wolfe",
        )
        self.seconds = 0.0
        self.stalled = False

    def objective(self) -> torch.Tensor:
        """The trained objective and its gradient in the leaves (torch.optim's closure)."""
        self.optimizer.zero_grad()
        value = self.setup.trained(self.leaves, self.setup.X, self.setup.y, 1.0).sum()
        value.backward()
        return value

    def _state(self, key: str) -> int:
        return self.optimizer.state[next(iter(self.leaves.values()))].get(key, 0)

    @property
    def iterations(self) -> int:
        return self._state("n_iter")

    @property
    def evaluations(self) -> int:
        return self._state("func_evals")

    def advance(self, step: int) -> None:
        """Iterate up to iteration `step`; stalled if the optimizer stops short of it."""
        todo = step - self.iterations
        if todo <= 0 or self.stalled:
            return
        group = self.optimizer.param_groups[0]
        group["max_iter"], group["max_eval"] = todo, todo * LINE_SEARCH_EVALUATIONS
        began = time.perf_counter()
        self.optimizer.step(self.objective)
        self.seconds += time.perf_counter() - began
        self.stalled = self.iterations < step

    def reported(self) -> float:
        with torch.no_grad():
            return float(self.setup.reported(self.leaves)[0])


def lbfgs_runs(
    setup: Setup,
    _name: str,
    hyper: dict[str, Any],
    theta: Params,
    seeds: list[int],
    grid: list[int],
    max_seconds: float,
    on_record: Callable[[int, list[float]], None],
) -> list[Outcome]:
    """L-BFGS from each of the stacked starts theta (one per seed): at each record step of `grid`
    every live replicate is advanced to it, the program's objective is read, and a replicate
    ends when `stop` says so (the budget counts all replicates' time), when it stalled, or at the
    last record step. A run's seconds are its own iterations'."""
    began = time.perf_counter()
    runs = [
        Replicate(setup, hyper, {name: value[r : r + 1] for name, value in theta.items()})
        for r in range(len(seeds))
    ]
    record = np.full((len(seeds), len(grid)), np.nan)
    outcomes: list[Outcome | None] = [None] * len(seeds)
    for index, step in enumerate(grid):
        live = [r for r, outcome in enumerate(outcomes) if outcome is None]
        for r in live:
            runs[r].advance(step)
            record[r, index] = runs[r].reported()
        on_record(step, record[:, index].tolist())
        elapsed = time.perf_counter() - began
        for r in live:
            run = runs[r]
            status = stop(record[r, index], record[r, 0], setup, elapsed, max_seconds)
            status = status or ("stalled" if run.stalled else None)
            status = status or ("steps" if index == len(grid) - 1 else None)
            if status is not None:
                trajectory = [float(v) if math.isfinite(v) else None for v in record[r, : index + 1]]
                outcomes[r] = Outcome(
                    seeds[r], status, run.iterations, run.seconds, trajectory, run.evaluations
                )
        if all(outcomes):
            break
    return [outcome for outcome in outcomes if outcome is not None]
