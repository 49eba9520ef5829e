"""The `train` experiment: several optimizers side by side on one network and dataset, R
replicates each; each run's rate measured on its recorded loss and set beside the rate theory
predicts from three kernels: H_inf, the empirical NTK at init and at the end of training."""

import math

import numpy as np
import torch

from schemas.experiments import TrainSpec
from schemas.results import (
    KernelSummary,
    OptimizerResult,
    RankEntry,
    RunResult,
    TrainResult,
)
from workers.compute.datasets import make_data, sign_labels
from workers.compute.device import DTYPES, resolve_device
from workers.compute.kernels.analytic import analytic_kernel
from workers.compute.kernels.empirical import tangent_kernel
from workers.compute.progress import Progress
from workers.compute.rates import fit_rates, rate_interval, rounding_floor
from workers.compute.spectrum import spectrum_of
from workers.compute.training.engine import Problem, Run, initial_params, record_steps, start, train
from workers.compute.training.optimizers import OPTIMIZERS, resolve


def summary(name: str, eigenvalues: torch.Tensor) -> KernelSummary:
    return KernelSummary(
        kernel=name, lambda_min=float(eigenvalues.min()), lambda_max=float(eigenvalues.max())
    )


def run_result(run: Run, floor: float, problem: Problem) -> RunResult:
    """The run's record, rate fit and final losses. The test MSE comes from the last recorded test
    loss, scale/2 sum_test (f - y)^2: test_mse = 2 test_loss / (scale n_test)."""
    losses = [math.inf if value is None else value for value in run.record["train_loss"]]
    steps = [int(step) for step in run.record["step"]]
    test_loss = run.record["test_loss"][-1] if "test_loss" in run.record else None
    n_test = 0 if problem.y_test is None else problem.y_test.shape[0]
    return RunResult(
        seed=run.seed,
        status=run.status,
        steps=run.steps,
        seconds=run.seconds,
        final_loss=run.record["train_loss"][-1],
        test_mse=None if test_loss is None else 2.0 * test_loss / (problem.scale * n_test),
        fit=fit_rates(steps, losses, floor),
        record=run.record,
        warnings=run.warnings,
    )


def ranking(results: list[OptimizerResult]) -> list[RankEntry]:
    """Optimizers by the mean number of steps to 1e-6 of the initial loss (those that never
    got there last), with the wall time it took (run time scaled by the share of steps)."""
    entries = []
    for result in results:
        reached = [run.fit.steps_to["1e-6"] for run in result.runs]
        if all(step is not None for step in reached):
            steps = float(np.mean(reached))
            seconds = float(
                np.mean(
                    [
                        run.seconds * step / max(run.steps, 1)
                        for run, step in zip(result.runs, reached, strict=True)
                    ]
                )
            )
            entries.append(RankEntry(optimizer=result.name, steps_to_1e_6=steps, seconds_to_1e_6=seconds))
        else:
            entries.append(RankEntry(optimizer=result.name, steps_to_1e_6=None, seconds_to_1e_6=None))
    return sorted(entries, key=lambda entry: math.inf if entry.steps_to_1e_6 is None else entry.steps_to_1e_6)


CPU_STACK_MAX = 2**22
"""On a CPU, replicates run stacked while their stacked hidden activations (R, n, m) hold at
most this many entries: measured (bench/train.py, 2 cores) about 2x faster than one by one
below it, where per-step overhead dominates, and about 2x slower above it (out of cache)."""


def seed_groups(spec: TrainSpec, device: torch.device) -> list[list[int]]:
    """The replicates' seeds, grouped into the batches that run stacked: all at once when
    batched, one by one when sequential. `auto` stacks on a GPU, and on a CPU only while the
    stacked activations stay within CPU_STACK_MAX entries."""
    seeds = [spec.seed + replicate for replicate in range(spec.replicates)]
    small = spec.replicates * spec.dataset.n * spec.width <= CPU_STACK_MAX
    batched = spec.batching == "batched" or (spec.batching == "auto" and (device.type == "cuda" or small))
    return [seeds] if batched else [[seed] for seed in seeds]


def run_train(spec: TrainSpec, progress: Progress) -> TrainResult:
    """Kernels and spectra first (for `auto` and the predictions), then every optimizer's runs."""
    device = resolve_device(spec.device)
    dtype = DTYPES[spec.dtype]
    data = make_data(spec.dataset, dtype, device)
    X, y = data.X, data.y
    n = X.shape[0]
    scale = 1.0 if spec.loss == "sum" else 1.0 / n
    progress(0.0, "kernels behind auto and predictions")
    binary = sign_labels(y, data.y_test)
    initial = tangent_kernel(spec.network, initial_params(spec.network, spec.width, X, spec.seed), X)
    reference = analytic_kernel(spec.network, X, spec.width) if spec.network.analytic else initial
    values, vectors, _complete = spectrum_of(reference, 1)  # residual directions: its extremes
    if spec.network.analytic:
        spectra = {"analytic": scale * values, "empirical_init": scale * torch.linalg.eigvalsh(initial)}
    else:
        spectra = {"empirical_init": scale * values}
    top, bottom = vectors[:, 0], vectors[:, -1]
    problem = Problem(
        spec.network, spec.width, X, y, data.X_test, data.y_test, scale, top, bottom, binary, spec.ntk_drift
    )
    auto_spectrum = spectra["analytic" if spec.auto_kernel == "analytic" else "empirical_init"]
    grid = record_steps(spec.steps, spec.record_points)
    groups = seed_groups(spec, device)
    chosen = [resolve(optimizer, auto_spectrum, n) for optimizer in spec.optimizers]
    total = len(spec.optimizers) * spec.replicates
    runs_of: list[list[Run]] = [[] for _ in spec.optimizers]
    done = 0
    for group in groups:  # one group's start at a time, shared by every optimizer
        begin = start(problem, group)
        for index, optimizer in enumerate(spec.optimizers):

            def on_record(
                step: int,
                losses: list[float],
                done: int = done,
                name: str = optimizer.name,
                first: int = group[0] - spec.seed,
            ) -> None:
                which = (
                    f"replicate {first}"
                    if len(losses) == 1
                    else f"replicates {first}-{first + len(losses) - 1}"
                )
                progress(
                    (done + len(losses) * step / spec.steps) / total,
                    f"{name} {which}: step {step}, loss {', '.join(f'{loss:.3g}' for loss in losses)}",
                )

            runs_of[index] += train(
                problem,
                optimizer.name,
                chosen[index][0],
                begin,
                spec.tolerance,
                spec.max_seconds,
                grid,
                on_record,
            )
            done += len(group)
    results = []
    for optimizer, (hyper, reason), runs in zip(spec.optimizers, chosen, runs_of, strict=True):
        kernels = dict(spectra)
        final_kernel = scale * tangent_kernel(spec.network, runs[0].final, X)
        if runs[0].status != "diverged" and bool(torch.isfinite(final_kernel).all()):
            kernels["empirical_final"] = torch.linalg.eigvalsh(final_kernel)
        predictions = [
            OPTIMIZERS[optimizer.name].predict(hyper, eigenvalues, name)
            for name, eigenvalues in kernels.items()
        ]
        eps = torch.finfo(dtype).eps
        fitted = [
            run_result(run, rounding_floor(eps, run.record["train_loss"][0] or 1.0), problem) for run in runs
        ]
        measured = [
            run.fit.rate for run in fitted if run.fit.verdict == "linear" and run.fit.rate is not None
        ]
        interval = rate_interval(measured) if measured else None
        results.append(
            OptimizerResult(
                name=optimizer.name,
                hyperparameters=hyper,
                auto=reason,
                runs=fitted,
                rate=interval,
                predicted=predictions,
                ratio={p.kernel: interval.mean / p.rate for p in predictions if interval and p.rate},
                final_kernel=summary("empirical_final", kernels["empirical_final"])
                if "empirical_final" in kernels
                else None,
            )
        )
    return TrainResult(
        dtype=spec.dtype,
        device=str(device),
        batched=len(groups) == 1 and spec.replicates > 1,
        n=n,
        d=X.shape[1],
        width=spec.width,
        parameters=spec.parameters(),
        loss=spec.loss,
        kernels=[summary(name, eigenvalues) for name, eigenvalues in spectra.items()],
        optimizers=results,
        ranking=ranking(results),
    )
