"""Nonconvex training of the nets the convex programs solve exactly, from random starts, with the
optimizers of `train` (workers.compute.training.optimizers) on the same regularised objective.

Parameters carry a leading replicate axis R. ReLU: theta = {W: (R, m, d), a: (R, m)}, trained
objective loss(f - y) + beta/2 (|W|^2 + |a|^2), the program's own objective. Polynomial: theta =
{W: (R, m, d), s: (R, m), t: (R, m)} with u_j = w_j / |w_j| (the unit-norm constraint built into
the net, so any step stays feasible) and alpha_j = s_j t_j, trained objective loss(f - y) +
beta/2 (|s|^2 + |t|^2): smooth, and equal to loss + beta sum |alpha_j| at its minimum over s, t
with s t fixed (beta |st| <= beta (s^2 + t^2) / 2, equality at |s| = |t|). Runs report the
program's objective of their net (for the polynomial net: loss + beta sum |s_j t_j|)."""

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.func import jacrev, vmap

from schemas.convex import ConvexSpec, ReluProgram
from schemas.convex_results import ComparisonRow, ConvexRun
from schemas.costs import HESSIAN_PRODUCTS
from schemas.optimizers import OptimizerSpec
from workers.compute.convex.programs import Objective
from workers.compute.networks import Params
from workers.compute.progress import Progress
from workers.compute.training.engine import DIVERGENCE_FACTOR, record_steps
from workers.compute.training.optimizers import OPTIMIZERS, Context, with_auto
from workers.compute.training.stacked import run_stacked
from workers.compute.training.theory import AutoHyper


@dataclass(frozen=True)
class Setup:
    """What every nonconvex run of a job shares."""

    objective: Objective
    X: torch.Tensor  # (n, d)
    y: torch.Tensor  # (n,)
    width: int
    init_scale: float
    optimum: float
    exact: bool  # False: sampled patterns, the optimum is an upper bound (runs never stop at it)
    tolerance: float  # absolute: a run within it of an exact optimum has reached it

    @property
    def relu(self) -> bool:
        return isinstance(self.objective.program, ReluProgram)

    def net(self, theta: Params) -> tuple[torch.Tensor, torch.Tensor]:
        """(U, alpha) of the nets: the first-layer rows and output weights."""
        if self.relu:
            return theta["W"], theta["a"]
        W = theta["W"]
        return W / W.norm(dim=-1, keepdim=True), theta["s"] * theta["t"]

    def reported(self, theta: Params) -> torch.Tensor:
        """The program's objective of each replicate's net: (R,)."""
        U, alpha = self.net(theta)
        return self.objective.value(self.X, self.y, U, alpha)

    def regularised(self, theta: Params) -> list[torch.Tensor]:
        """The parameters the penalty acts on, as beta/2 |.|^2."""
        return [theta["W"], theta["a"]] if self.relu else [theta["s"], theta["t"]]

    def trained(self, theta: Params, X: torch.Tensor, y: torch.Tensor, scale: float) -> torch.Tensor:
        """scale x data loss on (X, y) plus the smooth penalty: (R,)."""
        U, alpha = self.net(theta)
        penalty = sum(value.square().flatten(1).sum(1) for value in self.regularised(theta))
        return (
            scale * self.objective.data_loss(self.objective.predict(X, U, alpha) - y)
            + 0.5 * self.objective.beta * penalty
        )

    def residual(self, theta: Params) -> torch.Tensor:
        """[f(X) - y; sqrt(beta) theta_reg], stacked (R, n + q) or of one replicate (n + q,): half
        its square norm is the trained objective with the squared loss (the Gauss-Newton residual)."""
        U, alpha = self.net(theta)
        lead, root = alpha.shape[:-1], math.sqrt(self.objective.beta)
        pieces = [root * value.reshape(*lead, -1) for value in self.regularised(theta)]
        return torch.cat([self.objective.predict(self.X, U, alpha) - self.y, *pieces], dim=-1)


def starts(setup: Setup, seeds: list[int]) -> Params:
    """Each seed's start, stacked: rows of W ~ N(0, scale^2 I / d), output weights a ~ N(0, scale^2
    / m) (ReLU) or s, t ~ N(0, scale / m) each (polynomial: s t then has variance scale^2 / m^2)."""
    m, d = setup.width, setup.X.shape[1]
    per_seed = []
    for seed in seeds:
        g = torch.Generator().manual_seed(seed)
        W = setup.init_scale * torch.randn(m, d, generator=g, dtype=torch.float64) / math.sqrt(d)
        if setup.relu:
            params = {
                "W": W,
                "a": setup.init_scale * torch.randn(m, generator=g, dtype=torch.float64) / math.sqrt(m),
            }
        else:
            spread = math.sqrt(setup.init_scale / m)
            s, t = (spread * torch.randn(m, generator=g, dtype=torch.float64) for _ in range(2))
            params = {"W": W, "s": s, "t": t}
        per_seed.append(params)
    return {name: torch.stack([p[name] for p in per_seed]) for name in per_seed[0]}


def embedded(setup: Setup, U: torch.Tensor, alpha: torch.Tensor) -> Params | None:
    """The recovered optimum as a width-m net (R = 1), padded with silent neurons (zero for ReLU;
    for the polynomial net unit rows e_1 with s = t = 0); None when it has more than m neurons."""
    k, m = U.shape[0], setup.width
    if k > m:
        return None
    pad = m - k
    if setup.relu:
        return {
            "W": torch.cat([U, U.new_zeros(pad, U.shape[1])])[None],
            "a": torch.cat([alpha, alpha.new_zeros(pad)])[None],
        }
    rows = torch.cat([U, torch.eye(U.shape[1], dtype=U.dtype)[:1].expand(pad, -1)])
    root = alpha.abs().sqrt()
    s, t = torch.cat([root, root.new_zeros(pad)]), torch.cat([torch.sign(alpha) * root, root.new_zeros(pad)])
    return {"W": rows[None], "s": s[None], "t": t[None]}


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
    setup: Setup, optimizer: OptimizerSpec, points: list[Params]
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


@dataclass
class Outcome:
    """How one run ended; its objective at the grid's record steps up to there."""

    seed: int
    status: str
    steps: int
    seconds: float
    trajectory: list[float | None]


def stop(value: float, initial: float, setup: Setup, elapsed: float, max_seconds: float) -> str | None:
    """Why a run ends at a record step with this objective, or None to go on."""
    if not math.isfinite(value) or value > DIVERGENCE_FACTOR * max(initial, 1e-300):
        return "diverged"
    if setup.exact and value - setup.optimum <= setup.tolerance:
        return "reached"
    return "budget" if elapsed > max_seconds else None


def train(
    setup: Setup,
    name: str,
    hyper: dict[str, Any],
    seeds: list[int],
    grid: list[int],
    max_seconds: float,
    on_record: Callable[[int, list[float]], None],
) -> list[Outcome]:
    """Run one optimizer from each seed's start, the seeds stacked (`run_stacked`); the
    program's objective is read back at the record steps of `grid` only, where each replicate
    may stop on its own."""
    method = OPTIMIZERS[name](hyper, context(setup, seeds))
    record = np.full((len(seeds), len(grid)), np.nan)

    def measure(theta: Params, index: int) -> list[float]:
        record[:, index] = setup.reported(theta).detach().numpy()
        return record[:, index].tolist()

    def ends(r: int, value: float, elapsed: float) -> str | None:
        return stop(value, record[r, 0], setup, elapsed, max_seconds)

    endings = run_stacked(method.step, starts(setup, seeds), grid, measure, ends, on_record)
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


# ---------------------------------------------------------------------------------------------
# the comparison table: every optimizer from the same seeded starts, against the optimum
# ---------------------------------------------------------------------------------------------

RECORD_POINTS = 32
SOLVE_SPAN = 0.3  # of the progress bar, before the comparison


def run_row(outcome: Outcome, setup: Setup, name: str) -> ConvexRun:
    """One run's table row; a run below the optimum by more than the tolerance is a
    ValueError for an exact program (it contradicts the certificate) and flagged when sampled."""
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
        status=outcome.status,
        steps=outcome.steps,
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
    """Every optimizer of `compare` from `replicates` seeded starts, stacked."""
    seeds = [spec.seed + r for r in range(spec.replicates)]
    grid = record_steps(spec.steps, RECORD_POINTS)
    points = [starts(setup, seeds)]
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
        outcomes = train(setup, optimizer.name, hyper, seeds, grid, spec.max_seconds, on_record)
        runs = [run_row(outcome, setup, optimizer.name) for outcome in outcomes]
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
