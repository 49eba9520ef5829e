"""On a GPU machine: a train job on cuda (replicates stacked) gives the numbers of the same job
on the CPU (replicates one by one), in float64, and a kernel job's finite-width study (random
networks drawn per width) gives the CPU's. Prints the largest relative difference of the
recorded trajectories of each optimizer and of the kernel study, and exits non-zero above
TOLERANCE.

Run from the repository root: `python bench/gpu_check.py` (bench/gpu.sh does).
"""

import sys
import time

from schemas import KernelResult, KernelSpec, TrainResult, TrainSpec
from workers.compute import run_experiment

TOLERANCE = 1e-6
DYNAMICS_FLOOR = 1e-10
SPEC = {
    "kind": "train",
    "dataset": {"name": "sphere", "n": 64, "d": 8, "seed": 0},
    "network": {"name": "two_layer"},
    "width": 4096,
    "optimizers": [
        {"name": "gd"},
        {"name": "heavy_ball"},
        {"name": "nesterov", "momentum": "schedule"},
        {"name": "sgd", "batch_size": 16},
        {"name": "ggn"},
    ],
    "replicates": 4,
    "steps": 200,
    # No loss tolerance: heavy ball ends near the default 1e-24, where rounding alone decides the
    # step at which a run would stop; every run goes the full 200 steps instead.
    "tolerance": 0.0,
    "record_points": 64,
    "ntk_drift": True,
}
KERNEL_SPEC = {
    "kind": "kernel",
    "dataset": {"name": "sphere", "n": 256, "d": 10, "seed": 0},
    "network": {"name": "two_layer", "trained": "both"},
    "empirical": {"widths": [1024, 8192], "replicates": 2, "seed": 0},
}


def kernel_gap() -> float:
    """Largest relative difference, cuda vs cpu, of the finite-width study's figures."""
    rows = []
    for device in ("cuda", "cpu"):
        result = run_experiment(KernelSpec.model_validate({**KERNEL_SPEC, "device": device}))
        assert isinstance(result, KernelResult) and result.empirical is not None
        rows.append(result.empirical.rows)
    pairs = [
        (getattr(one, name).mean, getattr(other, name).mean)
        for one, other in zip(*rows, strict=True)
        for name in ("relative_frobenius", "relative_operator", "lambda_min")
    ]
    return max(abs(a - b) / abs(b) for a, b in pairs)


def timed(device: str, batching: str) -> tuple[TrainResult, float]:
    spec = TrainSpec.model_validate({**SPEC, "device": device, "batching": batching})
    began = time.perf_counter()
    result = run_experiment(spec)
    assert isinstance(result, TrainResult)
    return result, time.perf_counter() - began


def largest_gap(one: TrainResult, other: TrainResult) -> dict[str, tuple[float, str]]:
    """Per optimizer, the largest relative difference |a - b| / |b| of any recorded value while
    the training loss is above DYNAMICS_FLOOR times its initial value (below it, float64
    rounding noise is all that is left to compare). Activation-pattern flips are counts, where
    one point on a ReLU kink may flip either way: they are compared in absolute terms. Returns
    the gap with the name of the recorded quantity where it is."""
    gaps = {}
    for left, right in zip(one.optimizers, other.optimizers, strict=True):
        worst, where = 0.0, ""
        for run, twin in zip(left.runs, right.runs, strict=True):
            assert (run.status, run.steps) == (twin.status, twin.steps), (left.name, run.seed)
            losses = twin.record["train_loss"]
            live = [
                i for i, loss in enumerate(losses) if loss is not None and loss > DYNAMICS_FLOOR * losses[0]
            ]
            for name, values in run.record.items():
                for i in live:
                    a, b = values[i], twin.record[name][i]
                    gap = abs(a - b) if name == "pattern_flips" else abs(a - b) / max(abs(b), 1e-300)
                    if (b != 0 or a != 0) and gap > worst:
                        worst, where = gap, name
        gaps[left.name] = (worst, where)
    return gaps


def main() -> None:
    timed("cuda", "batched")  # warm-up
    gpu, gpu_seconds = timed("cuda", "batched")
    cpu, cpu_seconds = timed("cpu", "sequential")
    print(
        f"train job, 5 optimizers x 4 replicates, float64: cuda batched {gpu_seconds:.2f} s, cpu {cpu_seconds:.2f} s"
    )
    gaps = largest_gap(gpu, cpu)
    for name, (gap, where) in gaps.items():
        print(f"| {name} | largest relative gap cuda vs cpu: {gap:.1e} ({where}) |")
    kernel = kernel_gap()
    print(f"| kernel job, finite-width study | largest relative gap cuda vs cpu: {kernel:.1e} |")
    sys.exit(0 if max([kernel, *(gap for gap, _ in gaps.values())]) <= TOLERANCE else 1)


if __name__ == "__main__":
    main()
