"""Our trainer against a plain hand-written PyTorch loop, and R replicates stacked against run
one by one, in one run.

Run from the repository root: `python bench/train.py [--device cuda]` (bench/gpu.sh runs it on
a GPU machine). The net is the two-layer ReLU net of Du et al. (first layer trained, float32).

1. Trainer vs plain loop: n = 1000, d = 64, m = 4096, the same initial weights, 200 full-batch
   steps of GD and of heavy ball. The plain loop is what one writes by hand: an nn.Parameter,
   loss.backward(), an in-place update under no_grad, no recording. Ours records on its log
   grid (RECORD_POINTS points) as a job does. Both must end at the same loss. Steps per second
   are the best of ROUNDS; the ratio is the median over interleaved rounds (robust to load).
2. Replicates: R = 16 seeds of heavy ball, as one stacked batch (W: (R, m, d)) and one after the
   other, at a smaller size (n = 256, d = 32, m = 1024, 100 steps); both must give the same
   final losses. The ratio says which a job should use on this device.
"""

import argparse
import math
import os
import statistics
import time

import torch

from schemas.networks import TwoLayerNet
from workers.compute.datasets import uniform_sphere
from workers.compute.device import synchronize
from workers.compute.training.engine import Problem, initial_params, record_steps, start, train

STEPS, RECORD_POINTS = 200, 16
ROUNDS = 5
DTYPE = torch.float32
CASES = {"gd": {"lr": 0.1}, "heavy_ball": {"lr": 0.1, "momentum": 0.5}}
REPLICATES, REPLICATE_SIZE, REPLICATE_STEPS = 16, (256, 32, 1024), 100


def problem(n: int, d: int, m: int, device: torch.device) -> Problem:
    generator = torch.Generator().manual_seed(0)
    X = uniform_sphere(n, d, generator).to(DTYPE).to(device)
    y = (torch.randint(0, 2, (n,), generator=generator) * 2 - 1).to(DTYPE).to(device)
    return Problem(TwoLayerNet(), m, X, y, None, None, 1.0 / n, X[:, 0], X[:, 1], True, False)


def plain_loop(task: Problem, name: str, hyper: dict[str, float]) -> tuple[float, float]:
    """The hand-written loop; returns (seconds, final loss)."""
    n, m = task.X.shape[0], task.width
    start = initial_params(task.network, m, task.X, 0)
    W = torch.nn.Parameter(start["W"].clone())
    a = start["a"]
    previous = W.detach().clone()
    synchronize(task.X.device)
    began = time.perf_counter()
    for _ in range(STEPS):
        loss = 0.5 / n * ((torch.relu(task.X @ W.T) @ a / math.sqrt(m) - task.y) ** 2).sum()
        W.grad = None
        loss.backward()
        with torch.no_grad():
            current = W.detach().clone() if name == "heavy_ball" else None
            W -= hyper["lr"] * W.grad
            if current is not None:
                W += hyper["momentum"] * (current - previous)
                previous = current
    synchronize(task.X.device)
    seconds = time.perf_counter() - began
    with torch.no_grad():
        final = 0.5 / n * ((torch.relu(task.X @ W.T) @ a / math.sqrt(m) - task.y) ** 2).sum()
    return seconds, float(final)


def ours(
    task: Problem, name: str, hyper: dict[str, float], seeds: list[int], steps: int
) -> tuple[float, list]:
    """Our trainer on `seeds` stacked; returns (seconds, final losses). Its clock stops after the
    last record's host read, so queued device work is included."""
    [*runs] = train(
        task, name, hyper, start(task, seeds), 0.0, 3600, record_steps(steps, RECORD_POINTS), print_nothing
    )
    return max(run.seconds for run in runs), [run.record["train_loss"][-1] for run in runs]


def print_nothing(_step: int, _losses: list[float]) -> None:
    """No progress reports in a benchmark."""


def trainer_vs_plain(device: torch.device) -> None:
    task = problem(1000, 64, 4096, device)
    print(f"\n1. trainer vs plain loop: n=1000 d=64 m=4096, {STEPS} steps, float32, {device}")
    print("load average (1, 5, 15 min) before: " + ", ".join(f"{load:.2f}" for load in os.getloadavg()))
    print(
        "| optimizer | ours (steps/s) | plain loop (steps/s) | median ratio (ours/plain) | final loss ours / plain |"
    )
    print("|---|---|---|---|---|")
    for name, hyper in CASES.items():
        ours(task, name, hyper, [0], STEPS)  # warm-up
        plain_loop(task, name, hyper)
        pairs = [(ours(task, name, hyper, [0], STEPS), plain_loop(task, name, hyper)) for _ in range(ROUNDS)]
        mine = min(pair[0][0] for pair in pairs)
        theirs = min(pair[1][0] for pair in pairs)
        ratio = statistics.median(pair[1][0] / pair[0][0] for pair in pairs)
        losses = f"{pairs[0][0][1][0]:.6g} / {pairs[0][1][1]:.6g}"
        print(f"| {name} | {STEPS / mine:.1f} | {STEPS / theirs:.1f} | {ratio:.2f} | {losses} |")
    print("load average (1, 5, 15 min) after: " + ", ".join(f"{load:.2f}" for load in os.getloadavg()))


def replicates(device: torch.device) -> None:
    n, d, m = REPLICATE_SIZE
    task = problem(n, d, m, device)
    seeds = list(range(REPLICATES))
    hyper = CASES["heavy_ball"]
    print(
        f"\n2. replicates: R={REPLICATES} heavy ball, n={n} d={d} m={m}, {REPLICATE_STEPS} steps, float32, {device}"
    )
    print("| mode | seconds (best of 3) | run-steps/s | final losses agree |")
    print("|---|---|---|---|")
    ours(task, "heavy_ball", hyper, seeds[:2], 5)  # warm-up
    stacked = [ours(task, "heavy_ball", hyper, seeds, REPLICATE_STEPS) for _ in range(3)]
    one_by_one = [
        [ours(task, "heavy_ball", hyper, [seed], REPLICATE_STEPS) for seed in seeds] for _ in range(3)
    ]
    batched_seconds = min(seconds for seconds, _ in stacked)
    sequential_seconds = min(sum(seconds for seconds, _ in rounds) for rounds in one_by_one)
    batched_losses = stacked[0][1]
    sequential_losses = [losses[0] for _, losses in one_by_one[0]]
    agree = all(
        math.isclose(one, other, rel_tol=1e-4)
        for one, other in zip(batched_losses, sequential_losses, strict=True)
    )
    work = REPLICATES * REPLICATE_STEPS
    print(f"| batched | {batched_seconds:.3f} | {work / batched_seconds:.0f} | {agree} |")
    print(f"| sequential | {sequential_seconds:.3f} | {work / sequential_seconds:.0f} | {agree} |")
    print(f"batched / sequential speed-up: {sequential_seconds / batched_seconds:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    device = torch.device(parser.parse_args().device)
    name = (
        torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} threads"
    )
    print(f"torch {torch.__version__}, {device} ({name})")
    trainer_vs_plain(device)
    replicates(device)


if __name__ == "__main__":
    main()
