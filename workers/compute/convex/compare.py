"""Nonconvex training of the nets the convex programs solve exactly (nonconvex.py), from the
spec's starts (starts.py), with the optimizers of `train` (workers.compute.training.optimizers),
stacked over the replicates, or with L-BFGS one replicate at a time (lbfgs.py), on the same
regularised objective; each run against the certified optimum."""

import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.func import jacrev, vmap

from schemas.convex import ComparisonSpec, ConvexSpec
from schemas.convex_results import ComparisonRow, ConvexRun
from schemas.costs import HESSIAN_PRODUCTS
from workers.compute.convex.lbfgs import lbfgs_runs
from workers.compute.convex.nonconvex import Outcome, Setup, stop
from workers.compute.convex.starts import embedded, start_points
from workers.compute.networks import Params
from workers.compute.progress import Progress
from workers.compute.training.engine import record_steps
from workers.compute.training.optimizers import OPTIMIZERS, Context, with_auto
from workers.compute.training.stacked import run_stacked
from workers.compute.training.theory import AutoHyper


def curvature(
    loss: Callable[[Params], torch.Tensor], theta: Params, generator: torch.Generator
) -> torch.Tensor:
    """|lambda| of the largest-magnitude Hessian eigenvalue of each replicate's loss at theta, by
    HESSIAN_PRODUCTS steps of the power method on Hessian-vector products (double backward): (R,).
    Replicates are independent, so the Hessian of the summed losses is block diagonal."""
    leaves = {name: value.detach().requires_grad_() for name, value in theta.items()}
    grads = torch.autograd.grad(loss(leaves).sum(), list(leaves.values()), create_graph=True)
    v = [torch.randn(value.shape, generator=generator, dtype=value.dtype) for value in leaves.values()]
    estimate = torch.zeros(next(iter(theta.values())).shape[0], dtype=torch.float64)
    for _ in range(HESSIAN_PRODUCTS):
        norm = sum(piece.square().flatten(1).sum(1) for piece in v).sqrt()
        v = [piece / norm.view(-1, *[1] * (piece.dim() - 1)) for piece in v]
        dot = sum((g * piece).sum() for g, piece in zip(grads, v, strict=True))
        Hv = torch.autograd.grad(dot, list(leaves.values()), retain_graph=True)
        estimate = sum((h * piece).flatten(1).sum(1) for h, piece in zip(Hv, v, strict=True)).abs()
        v = [h.detach() for h in Hv]
    return estimate


def auto_lr(
    setup: Setup, optimizer: ComparisonSpec, points: list[Params]
) -> tuple[dict[str, Any], str | None]:
    """The optimizer's hyperparameters with `lr: auto` replaced by 1 / L, L the largest
    |Hessian eigenvalue| of the trained objective over the given points (each replicate's start
    and the recovered optimum): the step at which no direction of those quadratic models
    overshoots; then scaled as the method scales an automatic step (SGD: b / n, as in `train`)."""
    if optimizer.lr != "auto":
        return optimizer.model_dump(exclude={"name"}), None
    generator = torch.Generator().manual_seed(0)
    L = max(
        float(curvature(lambda p: setup.trained(p, setup.X, setup.y, 1.0), point, generator).max())
        for point in points
    )
    if not math.isfinite(L) or L <= 0:
        raise ValueError(f"auto lr: the Hessian estimate is {L}; give lr explicitly")
    reason = (
        f"lr = 1/L = 1/{L:.6g}, L the largest |Hessian eigenvalue| at the starts and the recovered optimum"
    )
    return with_auto(optimizer, AutoHyper(1.0 / L, 0.0, reason), setup.X.shape[0])


def context(setup: Setup, seeds: list[int]) -> Context:
    """The optimizers' view of the problem: the trained objective (a batch's data loss scaled by
    n / b), the Gauss-Newton residual and its Gram J J^T (torch.func Jacobians, per replicate)."""
    n = setup.X.shape[0]

    def loss(theta: Params, batch: torch.Tensor | None) -> torch.Tensor:
        if batch is None:
            return setup.trained(theta, setup.X, setup.y, 1.0)
        return setup.trained(theta, setup.X[batch], setup.y[batch], n / batch.shape[-1])

    def residual(theta: Params, _batch: torch.Tensor | None) -> torch.Tensor:
        return setup.residual(theta)

    def kernel(theta: Params, _batch: torch.Tensor | None) -> torch.Tensor:
        jacobian = vmap(jacrev(setup.residual))(theta)
        J = torch.cat([piece.flatten(2) for piece in jacobian.values()], dim=2)  # (R, rows, P)
        return J @ J.mT

    return Context(loss, residual, kernel, n, seeds, setup.X.device)


def stacked_runs(
    setup: Setup,
    name: str,
    hyper: dict[str, Any],
    theta: Params,
    seeds: list[int],
    grid: list[int],
    max_seconds: float,
    on_record: Callable[[int, list[float]], None],
) -> list[Outcome]:
    """Run one optimizer of `train` from the stacked starts theta (one per seed), the seeds
    stacked (`run_stacked`); the program's objective is read back at the record steps of `grid`
    only, where each replicate may stop on its own."""
    method = OPTIMIZERS[name](hyper, context(setup, seeds))
    record = np.full((len(seeds), len(grid)), np.nan)

    def measure(theta: Params, index: int) -> list[float]:
        record[:, index] = setup.reported(theta).detach().numpy()
        return record[:, index].tolist()

    def ends(r: int, value: float, elapsed: float) -> str | None:
        return stop(value, record[r, 0], setup, elapsed, max_seconds)

    endings = run_stacked(method.step, theta, grid, measure, ends, on_record)
    return [
        Outcome(
            seed,
            ending.status,
            ending.steps,
            ending.seconds,
            [float(v) if math.isfinite(v) else None for v in record[r, : ending.records]],
        )
        for r, (seed, ending) in enumerate(zip(seeds, endings, strict=True))
    ]


RUNS: dict[str, Callable[..., list[Outcome]]] = {"lbfgs": lbfgs_runs}
"""Optimizers that run their own loop (setup, name, hyper, theta, seeds, grid, max_seconds,
on_record) -> outcomes; any other name runs stacked (`stacked_runs`)."""


# ---------------------------------------------------------------------------------------------
# the comparison table: every optimizer from the same seeded starts, against the optimum
# ---------------------------------------------------------------------------------------------

RECORD_POINTS = 32
SOLVE_SPAN = 0.3  # of the progress bar, before the comparison


def run_row(outcome: Outcome, setup: Setup, name: str, start: tuple[str, float | None]) -> ConvexRun:
    """One run's table row; a run below the optimum by more than the tolerance is a
    ValueError for an exact program (it contradicts the certificate) and flagged when sampled.
    `start`: the spec's start name and its noise (None for random starts)."""
    objective = outcome.trajectory[-1]
    gap = None if objective is None else objective - setup.optimum
    below = None
    if gap is not None and gap < -setup.tolerance:
        if setup.exact:
            raise ValueError(
                f"{name} from seed {outcome.seed} ended at {objective:.12g}, below the certified optimum "
                f"{setup.optimum:.12g} by {-gap:.3g}: this contradicts the solver's certificate; report "
                "it with this spec"
            )
        below = "sampled_upper_bound"
    return ConvexRun(
        seed=outcome.seed,
        start=start[0],
        noise=start[1],
        status=outcome.status,
        steps=outcome.steps,
        evaluations=outcome.evaluations,
        seconds=outcome.seconds,
        objective=objective,
        gap=gap,
        relative_gap=None if gap is None or abs(setup.optimum) <= setup.tolerance else gap / setup.optimum,
        below_optimum=below,
        trajectory=outcome.trajectory,
    )


def compare(
    spec: ConvexSpec, setup: Setup, optimum_net: tuple[torch.Tensor, torch.Tensor], progress: Progress
) -> tuple[list[int], list[ComparisonRow]]:
    """Every optimizer of `compare` from the same `replicates` seeded starts of the spec's kind
    (`start_points`)."""
    seeds = [spec.seed + r for r in range(spec.replicates)]
    grid = record_steps(spec.steps, RECORD_POINTS)
    theta = start_points(setup, spec.start, seeds, optimum_net)
    start = (spec.start.name, getattr(spec.start, "noise", None))
    points = [theta]
    at_optimum = embedded(setup, *optimum_net)
    points += [at_optimum] if at_optimum is not None else []
    rows = []
    for index, optimizer in enumerate(spec.compare):
        hyper, reason = auto_lr(setup, optimizer, points)

        def on_record(
            step: int, _values: list[float], index: int = index, name: str = optimizer.name
        ) -> None:
            share = (index + step / spec.steps) / len(spec.compare)
            progress(SOLVE_SPAN + (1 - SOLVE_SPAN) * share, f"{name}: step {step}")

        began = time.perf_counter()
        runner = RUNS.get(optimizer.name, stacked_runs)
        fresh = {name: value.clone() for name, value in theta.items()}
        outcomes = runner(setup, optimizer.name, hyper, fresh, seeds, grid, spec.max_seconds, on_record)
        runs = [run_row(outcome, setup, optimizer.name, start) for outcome in outcomes]
        gaps = [run.gap for run in runs if run.status != "diverged" and run.gap is not None]
        rows.append(
            ComparisonRow(
                name=optimizer.name,
                hyperparameters=hyper,
                auto=reason,
                runs=runs,
                best_gap=min(gaps) if gaps else None,
                median_gap=statistics.median(gaps) if gaps else None,
                seconds=time.perf_counter() - began,
            )
        )
    return grid, rows
