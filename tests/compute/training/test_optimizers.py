"""The optimizers (workers.compute.training.optimizers): their registry and their steps.

A researcher names an optimizer in a train job and expects: every optimizer of the contract to be
there, choosing its auto hyperparameters from a spectrum, predicting a rate and pricing its step;
Nesterov's scheduled momentum (k-1)/(k+2) to start at zero; SGD's auto step to account for the
batch; minibatches to be each replicate's own seeded draws, however they are drawn ahead; and GGN
on a singular Gram matrix to damp it or say why. CPU, float64 unless a test says otherwise.
"""

import pytest
import torch
from pydantic import TypeAdapter

from schemas import TrainSpec
from schemas.optimizers import OptimizerSpec
from workers.compute import run_experiment
from workers.compute.datasets import make_data
from workers.compute.kernels.empirical import tangent_kernel
from workers.compute.training.engine import initial_params
from workers.compute.training.optimizers import OPTIMIZERS, Context, NesterovMethod, resolve

from .helpers import SPHERE, train


def test_the_registry_holds_every_optimizer_of_the_contract_and_knows_it_whole() -> None:
    """One class per schema name; each chooses its auto hyperparameters from a spectrum, predicts
    a rate (or says it has no theory) and prices its step, so adding an optimizer is its schema
    model, its class and this test."""
    names = set(TypeAdapter(OptimizerSpec).json_schema()["discriminator"]["mapping"])
    assert set(OPTIMIZERS) == names
    spectrum = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    for name, method in OPTIMIZERS.items():
        spec = TypeAdapter(OptimizerSpec).validate_python({"name": name})
        hyper, reason = resolve(spec, spectrum, n=64)
        assert "auto" not in hyper.values() and (reason is None) == ("auto" not in spec.model_dump().values())
        predicted = method.predict(hyper, spectrum, "test")
        assert predicted.kernel == "test" and (predicted.rate is None or 0 < predicted.rate < 1)
        assert spec.step_flops(64, 1000, lambda b: 1e6 * b) >= 6 * spec.points_per_step(64) * 1000
    gd, _ = resolve(TypeAdapter(OptimizerSpec).validate_python({"name": "gd"}), spectrum, n=64)
    sgd, why = resolve(
        TypeAdapter(OptimizerSpec).validate_python({"name": "sgd", "batch_size": 16}), spectrum, 64
    )
    assert sgd["lr"] == pytest.approx(gd["lr"] * 16 / 64, rel=1e-15) and "batch/n = 0.25" in (why or "")


def test_scheduled_momentum_starts_at_zero() -> None:
    method = NesterovMethod({"lr": 0.1, "momentum": "schedule"}, None)  # type: ignore[arg-type]
    assert [method.coefficient(k) for k in (1, 2, 3)] == [0.0, 0.25, 0.4]  # (k - 1) / (k + 2)


def test_sgd_auto_step_accounts_for_the_batch() -> None:
    result = train(width=1024, optimizers=[{"name": "sgd", "batch_size": 1}], steps=300)
    optimizer = result.optimizers[0]
    assert "batch/n" in optimizer.auto and optimizer.runs[0].status != "diverged"
    record = optimizer.runs[0].record
    assert record["train_loss"][-1] < 0.5 * record["train_loss"][0]


def test_minibatches_are_each_generators_own_draws_across_blocks() -> None:
    """Batches are drawn ahead in growing blocks; step by step they must still be the draws one
    randperm per step from each replicate's own generator gives (what a GPU run also sees)."""
    n, size, steps = 50, 7, 200  # blocks of 16, 32, 64, 128: several boundaries crossed

    seeds = [3, 4]
    context = Context(*(lambda *_: None,) * 3, n, seeds, torch.device("cpu"))  # type: ignore[arg-type]
    drawn = torch.stack([context.batch(size) for _ in range(steps)])  # (steps, R, size)
    fresh = [torch.Generator().manual_seed(seed + 2**32) for seed in seeds]  # seeded apart from the init
    expected = torch.stack(
        [torch.stack([torch.randperm(n, generator=g)[:size] for g in fresh]) for _ in range(steps)]
    )
    assert torch.equal(drawn, expected)


def test_ggn_on_a_singular_gram_damps_or_says_why() -> None:
    spec = {
        "kind": "train",
        "dataset": SPHERE,
        "network": {"name": "two_layer"},
        "width": 2,
        "dtype": "float32",
    }
    spec["optimizers"] = [{"name": "ggn"}]
    spec["steps"] = 5
    try:
        result = run_experiment(TrainSpec.model_validate(spec))
    except ValueError as error:
        assert "singular" in str(error)
    else:
        assert any("singular Gram" in warning for warning in result.optimizers[0].runs[0].warnings)


def test_auto_hyperparameters_are_stable_for_every_replicate() -> None:
    """Heavy ball at Polyak's optimum for [mu, L] is stable only for eigenvalues below L + mu
    (lr lambda < 2 (1 + momentum)). With the last layer of a deep net trained the loss is exactly
    quadratic in it, with each replicate's own kernel: the automatic choice must hold for the
    largest lambda_max among them (it came from the first seed's alone, and one replicate in four
    diverged), so every replicate converges."""
    network = {"name": "fully_connected", "depth": 3, "trained": "last"}
    result = train(network=network, width=256, steps=3000, replicates=4, optimizers=[{"name": "heavy_ball"}])
    optimizer = result.optimizers[0]
    assert [run.status for run in optimizer.runs] == ["converged"] * 4
    spec = TrainSpec.model_validate({"dataset": SPHERE, "network": network, "width": 256})
    data = make_data(spec.dataset, torch.float64, torch.device("cpu"))
    largest = max(
        float(
            torch.linalg.eigvalsh(
                tangent_kernel(spec.network, initial_params(spec.network, 256, data.X, seed), data.X)
            )[-1]
        )
        for seed in range(4)
    )
    lr, momentum = optimizer.hyperparameters["lr"], optimizer.hyperparameters["momentum"]
    assert isinstance(lr, float) and isinstance(momentum, float)
    assert lr * largest < 2 * (1 + momentum)
