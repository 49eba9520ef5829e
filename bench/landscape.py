"""What the closed-form landscape derivatives buy over the generic routes, and a census's wall time.

Run from the repository root: `python bench/landscape.py`. For R = 200 batched students of the
k = d = n = 8 teacher-student problem (identity teacher, output weights fixed; float64, CPU) it
times, in the same run and on the same points:

- gradient: our closed form `PopulationLoss.loss_and_gradient` (g(w, z) = (|z| sin t u +
  (pi - t) z) / (2 pi)) against torch.func `vmap(grad)` of the closed-form loss;
- Hessian: our closed form `PopulationLoss.hessian` (H11, H12 blocks of the arc-cosine kernel)
  against torch.func `vmap(hessian)` (jacfwd of jacrev) of the closed-form loss, and against the
  obvious route without a closed form: autograd Hessians (torch.func, one student at a time: a
  batch does not fit in memory) of a Monte Carlo loss on N = 2^14 Gaussian samples, for the first
  MONTE_CARLO_STARTS students. ReLU makes that loss piecewise quadratic, so its Hessian misses
  the curvature the kinks contribute in expectation (the H11 blocks, E[delta(w.x) ...]): it is
  biased, not merely noisy, and more samples do not close the gap;
- censuses end to end through `run_landscape` (one thread, as the worker runs them): k = d = n =
  10 with 1000 starts and k = d = n = 20 with 200 starts, L-BFGS and Newton polishing to
  |grad| <= 1e-10, the tally up to symmetry and each distinct point's spectrum; the time per start
  beside the job's cost estimate (`LandscapeSpec.cost`, flop-equivalents at 5e10 a second), the
  mean L-BFGS iterations, and at k = 20 the closed-form Hessian and its eigendecomposition per
  point (what Newton polishing and the spectra pay).

Each closed-form timing is the best of REPEATS after a warm-up call, given per student; the
alternative's largest relative gap to our result is printed beside it. Censuses run once.
"""

import math
import platform
import time

import torch
from timing import REPEATS, best_time
from torch.func import grad, hessian, vmap

from schemas.landscape import LandscapeSpec
from workers.compute.landscape.experiment import run_landscape
from workers.compute.landscape.loss import Layout, PopulationLoss, SampleLoss
from workers.compute.progress import silent

K = 8
STARTS = 200
CENSUSES = ((10, 1000), (20, 200))  # (k = d = n, random starts)
WORK_PER_SECOND = 5e10  # flop-equivalents a second behind the job budget (schemas/costs.py)
SAMPLES = 2**14
MONTE_CARLO_STARTS = 4
F64 = torch.float64


def relative_gap(estimate: torch.Tensor, exact: torch.Tensor) -> float:
    return float((estimate - exact).abs().max() / exact.abs().max())


def main() -> None:
    torch.set_num_threads(1)  # the worker runs landscape jobs on one thread (`single_thread`)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread, {platform.machine()}, float64")
    print(f"k = d = n = {K}, R = {STARTS} students (batched); best of {REPEATS} after a warm-up\n")
    layout = Layout(K, K, trained=False)
    objective = PopulationLoss(torch.eye(K, dtype=F64), layout)
    generator = torch.Generator().manual_seed(0)
    theta = torch.randn(STARTS, layout.size, generator=generator, dtype=F64) / math.sqrt(K)

    def single(t: torch.Tensor) -> torch.Tensor:
        return objective.loss(t[None])[0]

    X = torch.randn(SAMPLES, K, generator=generator, dtype=F64)
    sampled = SampleLoss(torch.eye(K, dtype=F64), layout, X)

    def monte_carlo(t: torch.Tensor) -> torch.Tensor:
        return sampled.loss(t[None])[0]

    few = theta[:MONTE_CARLO_STARTS]
    ours_grad, exact_grad = best_time(lambda: objective.loss_and_gradient(theta)[1])
    ours_hess, exact_hess = best_time(lambda: objective.hessian(theta))
    func_grad, by_grad = best_time(lambda: vmap(grad(single))(theta))
    func_hess, by_hess = best_time(lambda: vmap(hessian(single))(theta))
    sampled_hess, by_samples = best_time(lambda: torch.stack([hessian(monte_carlo)(t) for t in few]))
    rows = [
        ("gradient vs torch.func vmap(grad)", ours_grad / STARTS, func_grad / STARTS, by_grad, exact_grad),
        ("Hessian vs torch.func vmap(hessian)", ours_hess / STARTS, func_hess / STARTS, by_hess, exact_hess),
        (
            f"Hessian vs autograd, Monte Carlo N=2^{int(math.log2(SAMPLES))}",
            ours_hess / STARTS,
            sampled_hess / MONTE_CARLO_STARTS,
            by_samples,
            exact_hess[:MONTE_CARLO_STARTS],
        ),
    ]
    width = max(len(row[0]) for row in rows)
    header = f"| {'case':<{width}} | ours (ms/student) | alternative (ms/student) | ratio (alt/ours) | alt rel. gap |"
    print(header)
    print("|" + "|".join("-" * len(cell) for cell in header.split("|")[1:-1]) + "|")
    for case, ours, alternative, estimate, exact in rows:
        gap, ratio = relative_gap(estimate, exact), alternative / ours
        print(
            f"| {case:<{width}} | {1e3 * ours:17.4f} | {1e3 * alternative:24.4f} | {ratio:16.1f} | {gap:12.2e} |"
        )

    print()
    for k, starts in CENSUSES:
        census_row(k, starts)
    hessian_row(20)


def census_row(k: int, starts: int) -> None:
    """One census end to end, with its cost estimate and where the time went."""
    spec = LandscapeSpec(input_dim=k, teacher={"neurons": k}, student_width=k, starts=starts, seed=0)
    start = time.perf_counter()
    result = run_landscape(spec, silent)
    seconds = time.perf_counter() - start
    census, estimate = result.census, spec.cost().flops / WORK_PER_SECOND
    kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(census.reached.items()))
    stages = ", ".join(f"{stage} {value:.2f} s" for stage, value in result.seconds.items())
    print(
        f"census k = d = n = {k}, {starts} starts: {seconds:.1f} s, {1e3 * seconds / starts:.1f} ms a start; "
        f"estimate {estimate:.1f} s (estimate / measured {estimate / seconds:.2f}); {stages}; "
        f"L-BFGS iterations mean {census.lbfgs_iterations['mean']:.0f}, max {census.lbfgs_iterations['max']:.0f}; "
        f"{len(census.points)} distinct points ({kinds}; {len(census.unconverged)} unconverged)"
    )


def hessian_row(k: int) -> None:
    """The closed-form Hessian and its eigendecomposition per point at k = d = n (24 points)."""
    layout = Layout(k, k, trained=False)
    objective = PopulationLoss(torch.eye(k, dtype=F64), layout)
    theta = torch.randn(24, layout.size, generator=torch.Generator().manual_seed(1), dtype=F64) / math.sqrt(k)
    build, H = best_time(lambda: objective.hessian(theta))
    solve, _ = best_time(lambda: torch.linalg.eigh(H))
    print(
        f"k = d = n = {k} (P = {layout.size}): closed-form Hessian {1e3 * build / 24:.1f} ms a point, "
        f"eigh {1e3 * solve / 24:.1f} ms a point"
    )


if __name__ == "__main__":
    main()
