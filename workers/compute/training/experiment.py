"""The `train` experiment: several optimizers side by side on one network and dataset, R
replicates each; each run's rate measured on its recorded loss and set beside the rate theory
predicts from three kernels: H_inf, the empirical NTK at init and at the end of training."""

import torch

from schemas.experiments import TrainSpec
from schemas.results import (
    OptimizerResult,
    TrainResult,
)
from workers.compute.datasets import make_data, sign_labels
from workers.compute.device import DTYPES, resolve_device
from workers.compute.kernels.analytic import analytic_kernel
from workers.compute.kernels.empirical import tangent_kernel
from workers.compute.kernels.operator import StoredKernel
from workers.compute.progress import Progress
from workers.compute.rates import rate_interval, rounding_floor
from workers.compute.spectrum import spectrum_of
from workers.compute.training.engine import Problem, Run, initial_params, record_steps, start, train
from workers.compute.training.optimizers import OPTIMIZERS, resolve
from workers.compute.training.report import ranking, run_result, summary
from workers.compute.training.stacked import seed_groups


def replicate_envelope(spec: TrainSpec, X: torch.Tensor, scale: float, first: torch.Tensor) -> torch.Tensor:
    """The spectrum behind an empirical `auto`: the first seed's kernel at init, widened by the
    smallest lambda_min and the largest lambda_max of every other replicate's, so that one
    choice is stable for every replicate. Heavy ball at Polyak's optimum for [mu, L] is stable
    only for eigenvalues below L + mu (lr lambda < 2 (1 + momentum)), so a replicate whose
    lambda_max exceeds the first seed's by more than mu diverged (measured: one replicate in
    four, a depth-3 net with only its last layer trained, whose loss is exactly quadratic)."""
    if spec.replicates == 1 or spec.initial is not None or not any(o.uses_auto for o in spec.optimizers):
        return first
    ends = [first.min(), first.max()]
    for seed in range(spec.seed + 1, spec.seed + spec.replicates):
        values = torch.linalg.eigvalsh(
            tangent_kernel(spec.network, initial_params(spec.network, spec.width, X, seed), X)
        )
        ends += [scale * values[0], scale * values[-1]]
    return torch.cat([first, torch.stack(ends)]).sort().values


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
    theta0 = initial_params(spec.network, spec.width, X, spec.seed, spec.initial)
    initial = tangent_kernel(spec.network, theta0, X)
    reference = analytic_kernel(spec.network, X, spec.width) if spec.network.analytic else initial
    pairs = spectrum_of(StoredKernel(reference), 1)  # residual directions: its extremes
    values, vectors = pairs.values, pairs.vectors
    if spec.network.analytic:
        spectra = {"analytic": scale * values, "empirical_init": scale * torch.linalg.eigvalsh(initial)}
    else:
        spectra = {"empirical_init": scale * values}
    top, bottom = vectors[:, 0], vectors[:, -1]
    problem = Problem(
        spec.network,
        spec.width,
        X,
        y,
        data.X_test,
        data.y_test,
        scale,
        top,
        bottom,
        binary,
        spec.ntk_drift,
        spec.initial,
    )
    auto_spectrum = (
        spectra["analytic"]
        if spec.auto_kernel == "analytic"
        else replicate_envelope(spec, X, scale, spectra["empirical_init"])
    )
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
