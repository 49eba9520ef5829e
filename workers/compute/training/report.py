"""What a train job reports of its runs: each run's record, rate fit, order of convergence and
test error, the kernels' extreme eigenvalues, and the optimizers ranked by steps to 1e-6 of the
initial loss."""

import math

import numpy as np
import torch

from schemas.results import KernelSummary, OptimizerResult, RankEntry, RunResult
from workers.compute.order import convergence_order
from workers.compute.rates import fit_rates
from workers.compute.training.engine import Problem, Run


def summary(name: str, eigenvalues: torch.Tensor) -> KernelSummary:
    return KernelSummary(
        kernel=name, lambda_min=float(eigenvalues.min()), lambda_max=float(eigenvalues.max())
    )


def run_result(run: Run, floor: float, problem: Problem) -> RunResult:
    """The run's record, rate fit, order of convergence (from its per-step losses; `floor`
    leaves round-off out of both) and final losses. The test MSE comes from the last recorded test
    loss, scale/2 sum_test (f - y)^2: test_mse = 2 test_loss / (scale n_test)."""
    losses = [math.inf if value is None else value for value in run.record["train_loss"]]
    steps = [int(step) for step in run.record["step"]]
    test_loss = run.record["test_loss"][-1] if "test_loss" in run.record else None
    n_test = 0 if problem.y_test is None else problem.y_test.shape[0]
    return RunResult(
        seed=run.seed,
        initial_checksum=run.initial_checksum,
        status=run.status,
        steps=run.steps,
        seconds=run.seconds,
        final_loss=run.record["train_loss"][-1],
        test_mse=None if test_loss is None else 2.0 * test_loss / (problem.scale * n_test),
        fit=fit_rates(steps, losses, floor),
        order=convergence_order(run.step_losses, floor),
        step_losses=run.step_losses,
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
