"""The `convex` experiment: a convex program's certified optimum for a regularised two-layer net,
the network recovered from its solution (checked to reproduce the optimum), and what nonconvex
optimizers reach from random starts on the same objective (SCIENCE.md section 6)."""

import statistics
import time
from contextlib import nullcontext

import numpy as np
import torch

from schemas.convex import ConvexSpec, PolynomialProgram, ReluProgram, pattern_bound
from schemas.convex_results import ComparisonRow, ConvexResult, ConvexRun, Neuron, PatternReport, Recovery
from workers.compute.convex.compare import Outcome, Setup, auto_lr, embedded, starts, train
from workers.compute.convex.patterns import exact_patterns, nonzero, sampled_patterns
from workers.compute.convex.programs import (
    Objective,
    prune,
    relu_neurons,
    relu_program,
    sdp_neurons,
    sdp_program,
    solve,
)
from workers.compute.datasets import make_data
from workers.compute.device import single_thread
from workers.compute.progress import Progress
from workers.compute.training.engine import record_steps

RECORD_POINTS = 32
SINGLE_THREAD_MAX = 2**20
"""Stacked hidden activations (replicates x n x width) up to which the comparison runs on one
thread: its ops are then far below a millisecond and a second thread only adds waiting
(device.single_thread; a 12-point comparison measured 20 s on two threads of a loaded 2-core
machine, 1.3 s on one)."""
SOLVE_SPAN = 0.3  # of the progress bar, before the comparison
PRUNE_SHARE = 0.5
"""Share of the tolerance that dropping noise neurons from the recovered net may cost."""
READ_OFF = {
    "relu_convex": "u = v/sqrt|v|, alpha = +-sqrt|v| per pattern (Pilanci & Ergen 2020)",
    "polynomial_sdp": "rank-one pieces p = [q; t] of Z, Z' with |q| = |t| (Sturm & Zhang 2003): "
    "u = sign(t) q/|q|, alpha = +-t^2",
}
LOSS_WORDS = {
    "squared": "1/2 sum_i (f(x_i) - y_i)^2",
    "l1": "sum_i |f(x_i) - y_i|",
    "huber": "sum_i huber_delta(f(x_i) - y_i)",
}


def describe(spec: ConvexSpec) -> str:
    """The nonconvex objective the program solves, in words."""
    if isinstance(spec.program, ReluProgram):
        net, penalty = "relu(u_j . x)", "beta/2 sum_j (|u_j|^2 + alpha_j^2)"
    else:
        p = spec.program
        net, penalty = (
            f"({p.a:g} t^2 + {p.b:g} t + {p.c:g}) at t = u_j . x, |u_j| = 1",
            "beta sum_j |alpha_j|",
        )
    return f"{LOSS_WORDS[spec.loss]} + {penalty}, f(x) = sum_j alpha_j {net}"


def patterns_of(program: ReluProgram, X: np.ndarray) -> tuple[np.ndarray, PatternReport]:
    """The nonzero activation patterns the program ranges over (masks (P, n)) and their report."""
    began = time.perf_counter()
    if program.patterns == "exact":
        masks = nonzero(exact_patterns(X))
    else:
        masks = nonzero(sampled_patterns(X, program.samples, program.pattern_seed))
    report = PatternReport(
        mode=program.patterns,
        count=len(masks),
        bound=pattern_bound(*X.shape),
        samples=program.samples if program.patterns == "sampled" else None,
        seconds=time.perf_counter() - began,
    )
    return masks, report


def tolerance_of(spec: ConvexSpec, optimum: float) -> float:
    """check_tolerance relative to the optimum, plus the solver's own tolerance as an absolute
    floor (its stopping rule: gap <= tol_abs + tol_rel |objective|)."""
    return spec.check_tolerance * abs(optimum) + spec.solver_tolerance


def recovery(
    spec: ConvexSpec,
    objective: Objective,
    data: tuple[torch.Tensor, torch.Tensor],
    net: tuple[np.ndarray, np.ndarray],
    optimum: float,
) -> tuple[Recovery, torch.Tensor, torch.Tensor]:
    """The recovered net (its noise neurons pruned within PRUNE_SHARE of the tolerance) and its
    objective; a ValueError when that misses the optimum by more than the tolerance
    (`tolerance_of`): the solution was not accurate enough."""
    X, y = data
    tolerance = tolerance_of(spec, optimum)
    U, alpha = prune(
        objective, X, y, torch.from_numpy(net[0]), torch.from_numpy(net[1]), PRUNE_SHARE * tolerance
    )
    value = float(objective.value(X, y, U, alpha))
    error = abs(value - optimum)
    if not error <= tolerance:
        raise ValueError(
            f"the net recovered from the {spec.program.name} solution has objective {value:.12g}, the "
            f"solver's optimum is {optimum:.12g}: they differ by {error:.2e}, more than the tolerance "
            f"{tolerance:.2e} (check_tolerance x |optimum| + solver_tolerance); tighten "
            "solver_tolerance or use solver 'clarabel'"
        )
    report = Recovery(
        neurons=[Neuron(weights=u.tolist(), output=float(a)) for u, a in zip(U, alpha, strict=True)],
        active=len(alpha),
        objective=value,
        error=error,
        method=READ_OFF[spec.program.name],
    )
    return report, U, alpha


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


def run_convex(spec: ConvexSpec, progress: Progress) -> ConvexResult:
    """Solve the program, recover and check the net, then run the comparison."""
    data = make_data(spec.dataset, torch.float64, torch.device("cpu"))
    X, y = data.X, data.y
    Xn, yn = X.numpy(), y.numpy()
    objective = Objective(spec.program, spec.loss, spec.huber_delta, spec.beta)
    seconds: dict[str, float] = {}
    patterns = None
    if isinstance(spec.program, PolynomialProgram):
        progress(0.0, "solving the SDP")
        problem, first, second = sdp_program(objective, Xn, yn)
    else:
        progress(0.0, f"{spec.program.patterns} activation patterns")
        masks, patterns = patterns_of(spec.program, Xn)
        seconds["patterns"] = patterns.seconds
        progress(0.1, f"solving the group-lasso program over {patterns.count} patterns")
        problem, first, second = relu_program(objective, Xn, yn, masks)
    report = solve(problem, spec.solver, spec.solver_tolerance, spec.solver_seconds)
    seconds["solve"] = report.compile_seconds + report.solve_seconds
    optimum = float(problem.value)
    read = sdp_neurons if isinstance(spec.program, PolynomialProgram) else relu_neurons
    net = read(np.asarray(first.value), np.asarray(second.value))
    recovered, U, alpha = recovery(spec, objective, (X, y), net, optimum)
    exact = not (isinstance(spec.program, ReluProgram) and spec.program.patterns == "sampled")
    tolerance = tolerance_of(spec, optimum)
    setup = Setup(objective, X, y, spec.width, spec.init_scale, optimum, exact, tolerance)
    began = time.perf_counter()
    small = spec.replicates * X.shape[0] * spec.width <= SINGLE_THREAD_MAX
    with single_thread() if small else nullcontext():
        grid, rows = compare(spec, setup, (U, alpha), progress)
    seconds["compare"] = time.perf_counter() - began
    return ConvexResult(
        program=spec.program.name,
        objective=describe(spec),
        n=X.shape[0],
        d=X.shape[1],
        beta=spec.beta,
        optimum=optimum,
        tolerance=tolerance,
        exact=exact,
        solver=report,
        patterns=patterns,
        recovery=recovered,
        width=spec.width,
        record_steps=grid,
        comparison=rows,
        seconds=seconds,
    )
