"""Our trainer against a plain hand-written PyTorch loop, in one run.

Run from the repository root: `python bench/train.py`. The same two-layer ReLU net (Du et al.
form, first layer trained, n = 1000, d = 64, m = 4096, float32), the same initial weights,
200 full-batch steps of GD and of heavy ball. The plain loop is what one writes by hand: an
nn.Parameter, loss.backward(), an in-place update under no_grad, no recording. Ours records on
its log grid (RECORD_POINTS points) as a job does. Both trajectories must end at the same loss.
Steps per second are the best of ROUNDS; the ratio is the median over interleaved rounds.
"""

import math
import statistics
import time

import torch

from schemas.networks import TwoLayerNet
from workers.compute.datasets import uniform_sphere
from workers.compute.training import Problem, initial_params, record_steps, train

N, D, M, STEPS, RECORD_POINTS = 1000, 64, 4096, 200, 16
ROUNDS = 5  # interleaved; the ratio is the median of the per-round ratios (robust to load)
DTYPE = torch.float32
CASES = {"gd": {"lr": 0.1}, "heavy_ball": {"lr": 0.1, "momentum": 0.5}}


def problem() -> Problem:
    generator = torch.Generator().manual_seed(0)
    X = uniform_sphere(N, D, generator).to(DTYPE)
    y = (torch.randint(0, 2, (N,), generator=generator) * 2 - 1).to(DTYPE)
    return Problem(TwoLayerNet(), M, X, y, None, None, 1.0 / N, X[:, 0], X[:, 1], True, False)


def plain_loop(task: Problem, name: str, hyper: dict[str, float]) -> tuple[float, float]:
    """The hand-written loop; returns (seconds, final loss)."""
    start = initial_params(task.network, task.width, task.X, 0)
    W = torch.nn.Parameter(start["W"].clone())
    a = start["a"]
    previous = W.detach().clone()
    began = time.perf_counter()
    for _ in range(STEPS):
        loss = 0.5 / N * ((torch.relu(task.X @ W.T) @ a / math.sqrt(M) - task.y) ** 2).sum()
        W.grad = None
        loss.backward()
        with torch.no_grad():
            current = W.detach().clone() if name == "heavy_ball" else None
            W -= hyper["lr"] * W.grad
            if current is not None:
                W += hyper["momentum"] * (current - previous)
                previous = current
    seconds = time.perf_counter() - began
    with torch.no_grad():
        final = 0.5 / N * ((torch.relu(task.X @ W.T) @ a / math.sqrt(M) - task.y) ** 2).sum()
    return seconds, float(final)


def ours(task: Problem, name: str, hyper: dict[str, float]) -> tuple[float, float]:
    grid = record_steps(STEPS, RECORD_POINTS)
    run = train(task, name, hyper, 0, STEPS, 0.0, 3600, grid, lambda _step: None)
    return run.seconds, run.record["train_loss"][-1]


def main() -> None:
    task = problem()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; n={N} d={D} m={M}, {STEPS} steps, float32"
    )
    print(
        "| optimizer | ours (steps/s) | plain loop (steps/s) | median ratio (ours/plain) | final loss ours / plain |"
    )
    print("|---|---|---|---|---|")
    for name, hyper in CASES.items():
        ours(task, name, hyper)  # warm-up
        plain_loop(task, name, hyper)
        pairs = [(ours(task, name, hyper), plain_loop(task, name, hyper)) for _ in range(ROUNDS)]
        mine = min(pair[0][0] for pair in pairs)
        theirs = min(pair[1][0] for pair in pairs)
        ratio = statistics.median(pair[1][0] / pair[0][0] for pair in pairs)
        losses = f"{pairs[0][0][1]:.6g} / {pairs[0][1][1]:.6g}"
        print(f"| {name} | {STEPS / mine:.1f} | {STEPS / theirs:.1f} | {ratio:.2f} | {losses} |")


if __name__ == "__main__":
    main()
