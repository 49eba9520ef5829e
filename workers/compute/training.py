"""One training run: a network, an optimizer, a seed. Functional updates on the trained
parameters; metrics are written into device buffers at log-spaced record steps and read back
only there (where the stop rules are checked), never once per step."""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from schemas.networks import NetworkSpec
from workers.compute.empirical_ntk import tangent_kernel
from workers.compute.networks import Params, forward, init_params, trained_names
from workers.compute.optimizers import OPTIMIZERS, Context

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

    def loss(self, params: Params, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        residual = forward(self.network, params, X) - y
        return 0.5 * self.scale * (residual @ residual)


@dataclass
class Run:
    """A finished run: how it ended and its recorded trajectories (host lists)."""

    seed: int
    status: str  # converged | diverged | budget | steps
    steps: int
    seconds: float
    record: dict[str, list[float | None]]
    final: Params
    initial: Params
    warnings: list[str] = field(default_factory=list)


def metrics(
    problem: Problem,
    params: Params,
    start: Params,
    patterns0: torch.Tensor | None,
    kernel0: torch.Tensor | None,
) -> dict[str, torch.Tensor]:
    """Every recorded quantity that applies, at `params`, as 0-d device tensors (no host sync):
    losses, |theta - theta_0| / |theta_0| over the trained parameters, the largest movement of a
    first-layer neuron |w_r - w_r(0)|, the share of activation patterns 1[w_r.x_i >= 0] flipped
    since init, |u.e| for the top and bottom eigenvectors u of H_inf and the residual e = f - y,
    the test loss and error, and |H(t) - H(0)|_F / |H(0)|_F when asked."""
    residual = forward(problem.network, params, problem.X) - problem.y
    moved = torch.stack([(params[name] - start[name]).square().sum() for name in start]).sum()
    size = torch.stack([start[name].square().sum() for name in start]).sum()  # trained only
    values = {
        "train_loss": 0.5 * problem.scale * (residual @ residual),
        "weight_change": (moved / size).sqrt(),
        "residual_top": (problem.top @ residual).abs(),
        "residual_bottom": (problem.bottom @ residual).abs(),
    }
    first = FIRST_LAYER[problem.network.name]
    if patterns0 is not None:
        W = params[first]
        values["max_neuron_change"] = (W - start[first]).norm(dim=1).max()
        values["pattern_flips"] = ((problem.X @ W.T >= 0) != patterns0).to(W.dtype).mean()
    if problem.X_test is not None and problem.y_test is not None:
        predictions = forward(problem.network, params, problem.X_test)
        gap = predictions - problem.y_test
        values["test_loss"] = 0.5 * problem.scale * (gap @ gap)
        if problem.binary:
            values["test_error"] = (torch.sign(predictions) != problem.y_test).to(gap.dtype).mean()
    if kernel0 is not None:
        values["ntk_drift"] = torch.linalg.matrix_norm(
            tangent_kernel(problem.network, params, problem.X) - kernel0
        ) / torch.linalg.matrix_norm(kernel0)
    return values


def initial_params(network: NetworkSpec, width: int, X: torch.Tensor, seed: int) -> Params:
    """The seed's initialisation, on X's device and in its dtype (every run of a seed starts here)."""
    generator = torch.Generator(device=X.device).manual_seed(seed)
    return init_params(network, X.shape[1], width, generator, X.dtype)


def train(
    problem: Problem,
    optimizer: str,
    hyper: dict[str, Any],
    seed: int,
    steps: int,
    tolerance: float,
    max_seconds: float,
    grid: list[int],
    on_record: Callable[[int], None],
) -> Run:
    """Run `optimizer` from the seed's initialisation for at most `steps` steps."""
    params = initial_params(problem.network, problem.width, problem.X, seed)
    names = trained_names(problem.network, params)
    frozen = {name: value for name, value in params.items() if name not in names}
    theta = {name: params[name] for name in names}
    start = dict(theta)
    batches = torch.Generator(device=problem.X.device).manual_seed(seed + 2**32)

    def loss(trained: Params, batch: torch.Tensor | None) -> torch.Tensor:
        if batch is None:
            return problem.loss({**frozen, **trained}, problem.X, problem.y)
        return problem.loss({**frozen, **trained}, problem.X[batch], problem.y[batch]) * (
            problem.X.shape[0] / batch.shape[0]
        )

    def residual(trained: Params, batch: torch.Tensor | None) -> torch.Tensor:
        X, y = (problem.X, problem.y) if batch is None else (problem.X[batch], problem.y[batch])
        return forward(problem.network, {**frozen, **trained}, X) - y

    def kernel(trained: Params, batch: torch.Tensor | None) -> torch.Tensor:
        X = problem.X if batch is None else problem.X[batch]
        return tangent_kernel(problem.network, {**frozen, **trained}, X)

    context = Context(loss, residual, kernel, problem.X.shape[0], batches)
    method = OPTIMIZERS[optimizer](hyper, context)
    kernel0 = tangent_kernel(problem.network, params, problem.X) if problem.ntk_drift else None
    first = FIRST_LAYER[problem.network.name]
    patterns0 = problem.X @ params[first].T >= 0 if first in theta else None  # (n, m), fixed
    buffers: dict[str, torch.Tensor] = {}
    began = time.perf_counter()
    status, recorded, initial_loss, k = "steps", 0, None, 0
    while True:
        if k == grid[recorded]:
            for name, value in metrics(problem, {**frozen, **theta}, start, patterns0, kernel0).items():
                buffers.setdefault(
                    name, torch.full((len(grid),), float("nan"), dtype=value.dtype, device=value.device)
                )
                buffers[name][recorded] = value
            current = float(buffers["train_loss"][recorded])  # host sync, at record points only
            initial_loss = current if initial_loss is None else initial_loss
            recorded += 1
            on_record(k)
            if not np.isfinite(current) or current > DIVERGENCE_FACTOR * initial_loss:
                status = "diverged"
            elif current <= tolerance:
                status = "converged"
            elif time.perf_counter() - began > max_seconds:
                status = "budget"
            if status != "steps" or recorded == len(grid):
                break
        theta = method.step(k, theta)
        k += 1
    host = {name: buffer[:recorded].tolist() for name, buffer in buffers.items()}
    record: dict[str, list[float | None]] = {"step": [float(step) for step in grid[:recorded]]}
    for name, values in host.items():
        record[name] = [value if np.isfinite(value) else None for value in values]
    return Run(
        seed=seed,
        status=status,
        steps=k,
        seconds=time.perf_counter() - began,
        record=record,
        final={**frozen, **theta},
        initial=params,
        warnings=sorted(set(context.warnings)),
    )
