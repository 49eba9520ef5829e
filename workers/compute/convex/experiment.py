"""The `convex` experiment: a convex program's certified optimum for a regularised two-layer net,
the network recovered from its solution (checked to reproduce the optimum), and what nonconvex
optimizers reach from the spec's starts on the same objective (docs/science.md §6); for the SDP
also the spectra and ranks of its PSD blocks (tightness.py)."""

import time
from contextlib import nullcontext

import numpy as np
import torch

from schemas.convex import ConvexSpec, PolynomialProgram, ReluProgram
from schemas.convex_results import ConvexResult, Recovery, SdpReport
from workers.compute.convex.compare import compare
from workers.compute.convex.nonconvex import Setup
from workers.compute.convex.patterns import patterns_of
from workers.compute.convex.programs import (
    Objective,
    relu_neurons,
    relu_program,
    sdp_neurons,
    sdp_program,
    solve,
)
from workers.compute.convex.recovery import recovery, tolerance_of
from workers.compute.convex.tightness import rank_threshold, sdp_report
from workers.compute.datasets import make_data
from workers.compute.device import single_thread
from workers.compute.progress import Progress

SINGLE_THREAD_MAX = 2**20
"""Stacked hidden activations (replicates x n x width) up to which the comparison runs on one
thread: its ops are then far below a millisecond and a second thread only adds waiting
(device.single_thread; a 12-point comparison measured 20 s on two threads of a loaded 2-core
machine, 1.3 s on one)."""
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


def read_off(
    spec: ConvexSpec,
    objective: Objective,
    data: tuple[torch.Tensor, torch.Tensor],
    solution: tuple[np.ndarray, np.ndarray],
    optimum: float,
) -> tuple[Recovery, torch.Tensor, torch.Tensor, SdpReport | None]:
    """The recovered net (U, alpha) and, for the SDP, the report on its blocks. The SDP's net is
    read off the eigen-directions above the rank threshold first, so that each block gives as many
    neurons as its numerical rank, and off every positive eigenvalue when that misses the optimum."""
    first, second = solution
    if not isinstance(spec.program, PolynomialProgram):
        candidates = [("relu_convex", relu_neurons(first, second))]
        return *recovery(spec, objective, data, candidates, optimum), None
    tolerance = tolerance_of(spec, optimum)
    threshold = rank_threshold(first, second, spec.solver_tolerance, tolerance, spec.beta)
    candidates = [
        ("sdp_rank", sdp_neurons(first, second, threshold)),
        ("sdp_all", sdp_neurons(first, second)),
    ]
    recovered, U, alpha = recovery(spec, objective, data, candidates, optimum)
    return recovered, U, alpha, sdp_report(first, second, alpha, threshold, spec.program.return_matrices)


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
    tolerance = tolerance_of(spec, optimum)
    solution = (np.asarray(first.value), np.asarray(second.value))
    recovered, U, alpha, sdp = read_off(spec, objective, (X, y), solution, optimum)
    exact = not (isinstance(spec.program, ReluProgram) and spec.program.patterns == "sampled")
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
        sdp=sdp,
        width=spec.width,
        record_steps=grid,
        comparison=rows,
        seconds=seconds,
    )
