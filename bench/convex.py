"""What a certified optimum costs: Clarabel against SCS on the same programs, and the convex route
against the obvious alternative, the best of many nonconvex restarts.

Run from the repository root: `python bench/convex.py`. In the same run, float64 on the CPU:

- solver: each program of `CASES` built once and solved by Clarabel (interior point, the default)
  and by SCS (first-order splitting), both at tolerance SOLVER_TOLERANCE; wall time of the solve
  (cvxpy's canonicalisation excluded), iterations, and SCS's value minus Clarabel's;
- patterns: the exact enumeration of ReLU activation patterns (`exact_patterns`: in general
  position by the rays where d - 1 hyperplanes meet, certified by Cover's count) against the
  incremental one-LP-per-split route it falls back to, on sphere points, with the program's
  Clarabel solve beside for scale;
- route: for the 12-point ReLU example and the 20-point polynomial case, the whole convex route
  (patterns, program, solve, recovery and its check, through `run_convex` without a comparison)
  against RESTARTS batched L-BFGS restarts (the landscape's `lbfgs`, 3000 iterations, one
  thread) of a wide net on the same objective: wall time, the best restart's gap to the optimum,
  and how many restarts came within 1e-6 (relative) of it. The restarts give no certificate: they
  cannot say that the best of them is the optimum, the convex route can.
"""

import math
import platform
import time
from collections.abc import Callable

import cvxpy as cp
import numpy as np
import torch

from schemas.convex import EXACT_PATTERNS_MAX, ConvexSpec, pattern_bound
from schemas.datasets import SphereDataset
from workers.compute.convex.experiment import run_convex
from workers.compute.convex.patterns import exact_patterns, incremental_patterns, patterns_of
from workers.compute.convex.programs import Objective, relu_program, sdp_program, solve
from workers.compute.datasets import make_data
from workers.compute.device import single_thread
from workers.compute.landscape.critical_points import lbfgs
from workers.compute.progress import silent

SOLVER_TOLERANCE = 1e-6
RESTARTS = 50
F64 = torch.float64
CASES = {
    "relu exact n=12 d=2": {
        "program": {"name": "relu_convex"},
        "dataset": {"name": "sphere", "n": 12, "d": 2, "labels": {"rule": "relu_teacher", "k": 3}},
    },
    "relu exact n=22 d=3": {
        "program": {"name": "relu_convex"},
        "dataset": {"name": "sphere", "n": 22, "d": 3, "labels": {"rule": "relu_teacher", "k": 3}},
    },
    "relu sampled n=100 d=5": {
        "program": {"name": "relu_convex", "patterns": "sampled", "samples": 400},
        "dataset": {"name": "sphere", "n": 100, "d": 5, "labels": {"rule": "relu_teacher", "k": 3}},
    },
    "sdp n=20 d=3": {
        "program": {"name": "polynomial_sdp"},
        "dataset": {"name": "sphere", "n": 20, "d": 3, "labels": {"rule": "relu_teacher", "k": 3}},
    },
    "sdp n=2000 d=11": {
        "program": {"name": "polynomial_sdp"},
        "dataset": {"name": "sphere", "n": 2000, "d": 11, "labels": {"rule": "relu_teacher", "k": 3}},
    },
}


def spec_of(case: str) -> ConvexSpec:
    return ConvexSpec.model_validate({"kind": "convex", "compare": [], **CASES[case]})


def program_of(spec: ConvexSpec) -> cp.Problem:
    data = make_data(spec.dataset, F64, torch.device("cpu"))
    X, y = data.X.numpy(), data.y.numpy()
    objective = Objective(spec.program, spec.loss, spec.huber_delta, spec.beta)
    if spec.program.name == "polynomial_sdp":
        return sdp_program(objective, X, y)[0]
    return relu_program(objective, X, y, patterns_of(spec.program, X)[0])[0]


def solver_table() -> None:
    header = "| program | clarabel (s) | its | scs (s) | its | ratio (scs/clarabel) | scs - clarabel |"
    print(header)
    print("|" + "|".join("-" * len(cell) for cell in header.split("|")[1:-1]) + "|")
    for case in CASES:
        problem = program_of(spec_of(case))
        clarabel = solve(problem, "clarabel", SOLVER_TOLERANCE, 600)
        value = float(problem.value)
        scs = solve(problem, "scs", SOLVER_TOLERANCE, 600)
        print(
            f"| {case} | {clarabel.solve_seconds:.3f} | {clarabel.iterations} | {scs.solve_seconds:.3f} "
            f"| {scs.iterations} | {scs.solve_seconds / clarabel.solve_seconds:.1f} "
            f"| {float(problem.value) - value:.1e} |"
        )


def flat(
    f: Callable[..., torch.Tensor], shapes: list[tuple[int, ...]]
) -> Callable[[torch.Tensor], torch.Tensor]:
    """f of named pieces as a function of flat parameters (R, P)."""

    def loss(theta: torch.Tensor) -> torch.Tensor:
        pieces, at = [], 0
        for shape in shapes:
            size = math.prod(shape)
            pieces.append(theta[:, at : at + size].reshape(-1, *shape))
            at += size
        return f(*pieces)

    return loss


class Batched:
    """The landscape's L-BFGS interface over a flat loss."""

    def __init__(self, loss: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.loss = loss

    def loss_and_gradient(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        leaf = theta.detach().requires_grad_()
        value = self.loss(leaf)
        return value.detach(), torch.autograd.grad(value.sum(), leaf)[0]


def restarts(spec: ConvexSpec, width: int) -> Batched:
    """The nonconvex objective of the spec at this width, with RESTARTS starts' parameter shapes."""
    data = make_data(spec.dataset, F64, torch.device("cpu"))
    X, y, beta, d = data.X, data.y, spec.beta, data.X.shape[1]
    if spec.program.name == "relu_convex":

        def weight_decay(W: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
            f = (torch.relu(X @ W.mT) @ a[..., None])[..., 0]
            return 0.5 * (f - y).square().sum(-1) + 0.5 * beta * (
                W.square().sum((-2, -1)) + a.square().sum(-1)
            )

        return Batched(flat(weight_decay, [(width, d), (width,)]))

    a, b, c = spec.program.a, spec.program.b, spec.program.c

    def lifted(W: torch.Tensor, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        T = X @ (W / W.norm(dim=-1, keepdim=True)).mT
        f = (((a * T + b) * T + c) @ (s * t)[..., None])[..., 0]
        return 0.5 * (f - y).square().sum(-1) + 0.5 * beta * (s.square().sum(-1) + t.square().sum(-1))

    return Batched(flat(lifted, [(width, d), (width,), (width,)]))


def route_table() -> None:
    header = (
        f"| case | convex route (s) | {RESTARTS} L-BFGS restarts (s) | ratio (restarts/convex) "
        "| best restart rel. gap | restarts within 1e-6 |"
    )
    print(header)
    print("|" + "|".join("-" * len(cell) for cell in header.split("|")[1:-1]) + "|")
    for case, width in (("relu exact n=12 d=2", 30), ("sdp n=20 d=3", 40)):
        spec = spec_of(case)
        start = time.perf_counter()
        optimum = run_convex(spec, silent).optimum
        convex = time.perf_counter() - start
        objective = restarts(spec, width)
        d, outputs = spec.dataset.d, 1 if spec.program.name == "relu_convex" else 2
        g = torch.Generator().manual_seed(1)
        W = torch.randn(RESTARTS, width * d, generator=g, dtype=F64) / math.sqrt(d)
        theta = torch.cat(
            [W, torch.randn(RESTARTS, outputs * width, generator=g, dtype=F64) / math.sqrt(width)], 1
        )
        with single_thread():
            start = time.perf_counter()
            values = objective.loss(lbfgs(objective, theta, 3000).theta)
            nonconvex = time.perf_counter() - start
        gaps = (values - optimum) / optimum
        print(
            f"| {case}, width {width} | {convex:.2f} | {nonconvex:.2f} | {nonconvex / convex:.1f} "
            f"| {float(gaps.min()):.1e} | {int((gaps <= 1e-6).sum())}/{RESTARTS} |"
        )


PATTERN_CASES = ((12, 2, True), (22, 3, True), (30, 4, False), (200, 3, False))
"""(n, d, whether the LP route is timed too: 69 s at n = 30, d = 4; hours at n = 200)."""


def pattern_table() -> None:
    print("| points | patterns | Cover's count | ours (s) | LP route (s) | ratio | same set | solve (s) |")
    print("|---|---|---|---|---|---|---|---|")
    for n, d, with_lps in PATTERN_CASES:
        dataset = {"name": "sphere", "n": n, "d": d}
        X = make_data(SphereDataset.model_validate(dataset), F64, torch.device("cpu")).X.numpy()
        began = time.perf_counter()
        ours = exact_patterns(X)
        seconds = time.perf_counter() - began
        lps, same = "-", "-"
        if with_lps:
            began = time.perf_counter()
            theirs = incremental_patterns(X)
            lps = time.perf_counter() - began
            same = {row.tobytes() for row in ours} == {row.tobytes() for row in theirs}
        solve_seconds = "-"  # past the program's cap on exact patterns there is no program
        if len(ours) <= EXACT_PATTERNS_MAX:
            program = {"name": "relu_convex"}
            spec = ConvexSpec.model_validate(
                {"kind": "convex", "compare": [], "program": program, "dataset": dataset}
            )
            solve_seconds = f"{solve(program_of(spec), 'clarabel', SOLVER_TOLERANCE, 600).solve_seconds:.3f}"
        ratio = "-" if lps == "-" else f"{lps / seconds:.0f}"
        lp_cell = lps if lps == "-" else f"{lps:.3f}"
        print(
            f"| n={n} d={d} | {len(ours)} | {pattern_bound(n, d)} | {seconds:.4f} | {lp_cell} | {ratio} "
            f"| {same} | {solve_seconds} |"
        )


def main() -> None:
    print(f"torch {torch.__version__}, cvxpy {cp.__version__}, numpy {np.__version__}, ", end="")
    print(f"{torch.get_num_threads()} threads, {platform.machine()}, float64")
    print(f"\nsolvers at tolerance {SOLVER_TOLERANCE:g} (solve only; canonicalisation excluded)\n")
    solver_table()
    print("\nexact activation patterns: the vertex enumeration against one LP per split\n")
    pattern_table()
    print("\nthe convex route against nonconvex restarts (same objective, no certificate)\n")
    route_table()


if __name__ == "__main__":
    main()
