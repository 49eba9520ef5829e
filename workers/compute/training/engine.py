"""Training runs: a network, an optimizer and R seeds, as one stacked batch (parameters with a
leading replicate axis, W: (R, m, d)) or one seed at a time (R = 1): replicates never interact,
so both give the same numbers. Functional updates on the trained parameters; metrics are
written into device buffers at log-spaced record steps and read back only there (where
divergence and the budget are checked), never once per step. The tolerance is checked on the
device at every step (training/stacked.py; a mini-batch method once per pass over the data), so
a run converges at the first checked step whose loss is at or below it, whatever the record
grid; the loss of each of the first STEP_LOSSES steps is kept too (for the order of
convergence, which needs consecutive steps)."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from schemas.networks import NetworkSpec
from schemas.results import STEP_LOSSES
from schemas.weights import InitialWeights
from workers.compute.kernels.empirical import tangent_kernel
from workers.compute.networks import Params, forward, init_params, trained_names
from workers.compute.training.optimizers import OPTIMIZERS, Context
from workers.compute.training.stacked import Target, run_stacked
from workers.compute.weights import given_params, weights_checksum

DIVERGENCE_FACTOR = 1e6
FIRST_LAYER = {"two_layer": "W", "fully_connected": "W1"}


def record_steps(steps: int, points: int) -> list[int]:
    """0 and up to points - 1 log-spaced steps in 1..steps, the last one included."""
    grid = np.unique(np.round(np.geomspace(1, steps, num=max(points - 1, 1))).astype(int))
    return [0, *grid.tolist()]


@dataclass
class Problem:
    """What every run of a job shares."""

    network: NetworkSpec
    width: int
    X: torch.Tensor  # (n, d)
    y: torch.Tensor  # (n,)
    X_test: torch.Tensor | None
    y_test: torch.Tensor | None
    scale: float  # loss = scale / 2 * sum (f - y)^2
    top: torch.Tensor  # (n,) eigenvector of H_inf (or, without a closed form, H(0)): largest eigenvalue
    bottom: torch.Tensor  # (n,) ... smallest eigenvalue
    binary: bool  # training and test labels in {-1, +1}: report the test error
    ntk_drift: bool
    initial: InitialWeights | None = None  # every seed's start, given; None: drawn from each seed

    def loss(self, residual: torch.Tensor) -> torch.Tensor:
        """(R,) losses of (R, b) residuals f - y: scale / 2 |f - y|^2."""
        return 0.5 * self.scale * residual.square().sum(-1)


@dataclass(frozen=True)
class Start:
    """Where a group of replicates starts, whatever the optimizer: each seed's initial
    parameters stacked (W: (R, m, d)) and their checksums, the first layer's activation patterns
    1[w_r.x_i >= 0] when it is trained, and the tangent kernel when its drift is recorded."""

    seeds: list[int]
    params: Params
    checksums: list[str]  # weights_checksum of each seed's initial parameters
    patterns: torch.Tensor | None  # (R, n, m)
    kernel: torch.Tensor | None  # (R, n, n)


@dataclass
class Run:
    """A finished run: how it ended, its recorded trajectories and its training loss at each of
    the steps 0, 1, ..., min(steps, STEP_LOSSES - 1) (host lists, None where not finite)."""

    seed: int
    status: str  # converged | diverged | budget | steps
    steps: int
    seconds: float
    record: dict[str, list[float | None]]
    final: Params
    initial: Params
    initial_checksum: str
    step_losses: list[float | None] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def metrics(problem: Problem, params: Params, start: Start, size: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every recorded quantity that applies, at stacked `params`, as (R,) device tensors (no
    host sync): losses, |theta - theta_0| / |theta_0| over the trained parameters, the largest
    movement of a first-layer neuron |w_r - w_r(0)|, the share of activation patterns
    1[w_r.x_i >= 0] flipped since init, |u.e| for the top and bottom eigenvectors u of H_inf
    and the residual e = f - y, the test loss and error, and |H(t) - H(0)|_F / |H(0)|_F when
    asked. `size`: |theta_0|^2 over the trained parameters, (R,)."""
    residual = forward(problem.network, params, problem.X) - problem.y  # (R, n)
    trained = trained_names(problem.network, params)
    moved = sum((params[name] - start.params[name]).square().flatten(1).sum(1) for name in trained)
    values = {
        "train_loss": problem.loss(residual),
        "weight_change": (moved / size).sqrt(),
        "residual_top": (residual @ problem.top).abs(),
        "residual_bottom": (residual @ problem.bottom).abs(),
    }
    first = FIRST_LAYER[problem.network.name]
    if start.patterns is not None:
        W = params[first]
        values["max_neuron_change"] = (W - start.params[first]).norm(dim=-1).amax(-1)
        flipped = (problem.X @ W.mT >= 0) != start.patterns
        values["pattern_flips"] = flipped.to(W.dtype).mean(dim=(-2, -1))
    if problem.X_test is not None and problem.y_test is not None:
        predictions = forward(problem.network, params, problem.X_test)
        gap = predictions - problem.y_test
        values["test_loss"] = problem.loss(gap)
        if problem.binary:
            values["test_error"] = (torch.sign(predictions) != problem.y_test).to(gap.dtype).mean(-1)
    if start.kernel is not None:
        values["ntk_drift"] = torch.linalg.matrix_norm(
            tangent_kernel(problem.network, params, problem.X) - start.kernel
        ) / torch.linalg.matrix_norm(start.kernel)
    return values


def per_step(losses: list[float], steps: int, last: float | None) -> list[float | None]:
    """The losses of steps 0, 1, ..., min(steps, STEP_LOSSES - 1) out of a replicate's per-step
    buffer `losses` (None where not finite). The loss at its last step, which no step evaluated
    when the run ended at a record, is that record's (`last`)."""
    kept: list[float | None] = [value if np.isfinite(value) else None for value in losses[: steps + 1]]
    if steps < STEP_LOSSES:
        kept[steps] = last
    return kept


def initial_params(
    network: NetworkSpec, width: int, X: torch.Tensor, seed: int, given: InitialWeights | None = None
) -> Params:
    """The seed's initialisation, or the `given` weights whatever the seed, on X's device and in
    its dtype (every run of a seed starts here)."""
    if given is not None:
        return given_params(given, X.dtype, X.device)
    return init_params(network, X.shape[1], width, torch.Generator().manual_seed(seed), X.dtype, X.device)


def start(problem: Problem, seeds: list[int]) -> Start:
    """The seeds' shared starting point (built once, used by every optimizer of a job)."""
    per_seed = [
        initial_params(problem.network, problem.width, problem.X, seed, problem.initial) for seed in seeds
    ]
    params = {name: torch.stack([one[name] for one in per_seed]) for name in per_seed[0]}
    first = FIRST_LAYER[problem.network.name]
    trained = first in trained_names(problem.network, params)
    return Start(
        seeds=seeds,
        params=params,
        checksums=[weights_checksum(one) for one in per_seed],
        patterns=problem.X @ params[first].mT >= 0 if trained else None,
        kernel=tangent_kernel(problem.network, params, problem.X) if problem.ntk_drift else None,
    )


def stop_status(loss: float, initial: float, elapsed: float, max_seconds: float) -> str | None:
    """Why a run ends at a record point with this loss, or None to go on (reaching the tolerance
    is checked at every step, not here)."""
    if not np.isfinite(loss) or loss > DIVERGENCE_FACTOR * initial:
        return "diverged"
    if elapsed > max_seconds:
        return "budget"
    return None


def train(
    problem: Problem,
    optimizer: str,
    hyper: dict[str, Any],
    begin: Start,
    tolerance: float,
    max_seconds: float,
    grid: list[int],
    on_record: Callable[[int, list[float]], None],
) -> list[Run]:
    """Run `optimizer` from `begin` (its seeds stacked into one batch) up to the last step of
    `grid` (the record steps); `on_record(step, losses)` after each record. Each replicate stops
    on its own (its record and final parameters are kept from that point); the batch stops when
    none is left, and shares one clock. A replicate whose loss reaches `tolerance` at a step off
    the grid gets one more record, at that step (its last)."""
    seeds, params = begin.seeds, begin.params
    names = trained_names(problem.network, params)
    frozen = {name: value for name, value in params.items() if name not in names}
    theta = {name: params[name] for name in names}
    size = sum(value.square().flatten(1).sum(1) for value in theta.values())
    device = problem.X.device
    n = problem.X.shape[0]

    def data(batch: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        return (problem.X, problem.y) if batch is None else (problem.X[batch], problem.y[batch])

    def residual(trained: Params, batch: torch.Tensor | None) -> torch.Tensor:
        X, y = data(batch)
        return forward(problem.network, {**frozen, **trained}, X) - y

    def loss(trained: Params, batch: torch.Tensor | None) -> torch.Tensor:
        value = problem.loss(residual(trained, batch))
        return value if batch is None else value * (n / batch.shape[-1])

    def kernel(trained: Params, batch: torch.Tensor | None) -> torch.Tensor:
        return tangent_kernel(problem.network, {**frozen, **trained}, data(batch)[0])

    context = Context(loss, residual, kernel, n, seeds, device)
    method = OPTIMIZERS[optimizer](hyper, context)
    buffers: dict[str, torch.Tensor] = {}  # (R, len(grid) + 1): the grid's records, then a final one
    initial_loss: list[float] = []
    step_losses = torch.full((len(seeds), STEP_LOSSES), float("nan"), dtype=problem.X.dtype, device=device)

    def write(trained: Params, index: int, rows: torch.Tensor | slice) -> None:
        for name, value in metrics(problem, {**frozen, **trained}, begin, size).items():
            if name not in buffers:
                buffers[name] = torch.full(
                    (len(seeds), len(grid) + 1), float("nan"), dtype=value.dtype, device=device
                )
            buffers[name][rows, index] = value[rows]

    def measure(trained: Params, index: int) -> list[float]:
        write(trained, index, slice(None))
        losses = buffers["train_loss"][:, index].tolist()  # host sync, at record points only
        initial_loss[:] = initial_loss or losses
        return losses

    unchecked, every = torch.zeros(len(seeds), dtype=torch.bool, device=device), method.check_every

    def below(k: int, trained: Params, loss: torch.Tensor | None) -> torch.Tensor:
        """(R,) L(theta_k) <= tolerance; L from the step, else one forward pass (no host sync),
        made for the first STEP_LOSSES steps and then once every `every` steps
        (one pass over the data of a mini-batch method; all False in between)."""
        if loss is None:
            if k >= STEP_LOSSES and k % every:
                return unchecked
            with torch.no_grad():
                loss = problem.loss(residual(trained, None))
        if k < STEP_LOSSES:
            step_losses[:, k] = loss
        return loss <= tolerance

    def final(trained: Params, rows: list[int]) -> None:
        write(trained, len(grid), torch.tensor(rows, device=device))

    def stop(r: int, loss: float, elapsed: float) -> str | None:
        return stop_status(loss, initial_loss[r], elapsed, max_seconds)

    endings = run_stacked(method.step, theta, grid, measure, stop, on_record, Target(below, final))
    host = {name: buffer.tolist() for name, buffer in buffers.items()}
    early = step_losses.tolist()
    runs = []
    for r, (seed, ending) in enumerate(zip(seeds, endings, strict=True)):
        kept = list(range(ending.records)) + ([len(grid)] if ending.extra else [])
        steps = [*grid[: ending.records], *([ending.steps] if ending.extra else [])]
        record: dict[str, list[float | None]] = {"step": [float(step) for step in steps]}
        for name, values in host.items():
            record[name] = [values[r][i] if np.isfinite(values[r][i]) else None for i in kept]
        runs.append(
            Run(
                seed=seed,
                status=ending.status,
                steps=ending.steps,
                seconds=ending.seconds,
                record=record,
                final={**{name: value[r] for name, value in frozen.items()}, **ending.final},
                initial={name: value[r] for name, value in params.items()},
                initial_checksum=begin.checksums[r],
                step_losses=per_step(early[r], ending.steps, record["train_loss"][-1]),
                warnings=sorted({message for replicate, message in context.warnings if replicate == r}),
            )
        )
    return runs
