"""The `train` experiment reproduces the momentum story of Bu, Xu & Chen (2021) and the
second-order convergence of Gram-Gauss-Newton on small, wide two-layer ReLU nets."""

import itertools
import math

import pytest
import torch
from pydantic import TypeAdapter

from schemas import TrainResult, TrainSpec
from schemas.networks import FullyConnected, TwoLayerNet
from schemas.optimizers import OptimizerSpec
from workers.compute import run_experiment
from workers.compute.datasets import make_data
from workers.compute.kernels.analytic import analytic_kernel
from workers.compute.networks import init_params
from workers.compute.training import engine
from workers.compute.training.engine import Problem, record_steps
from workers.compute.training.optimizers import OPTIMIZERS, Context, NesterovMethod, resolve
from workers.compute.training.stacked import seed_groups

SPHERE = {"name": "sphere", "n": 32, "d": 8, "seed": 0}


def train(**fields: object) -> TrainResult:
    spec = {"kind": "train", "dataset": SPHERE, "network": {"name": "two_layer"}, "width": 8192, **fields}
    result = run_experiment(TrainSpec.model_validate(spec))
    assert isinstance(result, TrainResult)
    return result


@pytest.fixture(scope="module")
def momentum() -> TrainResult:
    optimizers = [{"name": "gd"}, {"name": "heavy_ball"}, {"name": "nesterov"}]
    return train(optimizers=optimizers, steps=400, record_points=128, replicates=2)


def by_name(result: TrainResult, name: str):  # type: ignore[no-untyped-def]
    return next(optimizer for optimizer in result.optimizers if optimizer.name == name)


def test_gd_heavy_ball_and_constant_nesterov_converge_linearly(momentum: TrainResult) -> None:
    for name in ("gd", "heavy_ball", "nesterov"):
        for run in by_name(momentum, name).runs:
            assert run.fit.verdict == "linear", (name, run.fit)
    assert all(len(optimizer.runs) == 2 for optimizer in momentum.optimizers)


def test_heavy_ball_at_auto_is_several_times_faster_than_gd(momentum: TrainResult) -> None:
    gd, heavy = by_name(momentum, "gd"), by_name(momentum, "heavy_ball")
    assert "Polyak" in heavy.auto and heavy.hyperparameters["momentum"] > 0.3
    for slow, fast in zip(gd.runs, heavy.runs, strict=True):
        assert fast.fit.steps_to["1e-6"] * 4 <= slow.fit.steps_to["1e-6"]
    assert [entry.optimizer for entry in momentum.ranking][-1] == "gd"


def test_measured_rates_match_the_final_empirical_kernel(momentum: TrainResult) -> None:
    for name in ("gd", "heavy_ball"):
        optimizer = by_name(momentum, name)
        assert {p.kernel for p in optimizer.predicted} == {"analytic", "empirical_init", "empirical_final"}
        assert optimizer.ratio["empirical_final"] == pytest.approx(1.0, abs=0.05), optimizer.ratio
        assert optimizer.rate.low <= optimizer.rate.mean <= optimizer.rate.high
    # at finite width the kernel moves: heavy ball's prediction from the NTK at init is too fast
    heavy = by_name(momentum, "heavy_ball")
    assert heavy.ratio["empirical_init"] > 1.1


def test_records_follow_the_lazy_regime(momentum: TrainResult) -> None:
    record = by_name(momentum, "gd").runs[0].record
    assert record["step"][0] == 0 and record["weight_change"][0] == 0
    assert 0 < record["weight_change"][-1] < 0.05  # wide net: the weights barely move
    assert 0 <= record["pattern_flips"][-1] < 0.05
    assert record["train_loss"][-1] < 1e-6 * record["train_loss"][0]
    assert len(record["step"]) <= 128 and record["step"] == sorted(set(record["step"]))


def analytic_extremes(width: int) -> tuple[float, float]:
    """lambda_min and lambda_max of H_inf for the sphere data, as a one-step job reports them."""
    probe = train(width=width, optimizers=[{"name": "gd"}], steps=1, record_points=8)
    analytic = next(kernel for kernel in probe.kernels if kernel.kernel == "analytic")
    return analytic.lambda_min, analytic.lambda_max


def test_scheduled_nesterov_is_sublinear_at_a_small_step() -> None:
    _, lambda_max = analytic_extremes(2048)
    optimizer = {"name": "nesterov", "momentum": "schedule", "lr": 0.01 / lambda_max}
    fit = train(width=2048, optimizers=[optimizer], steps=3000).optimizers[0].runs[0].fit
    assert fit.verdict == "sublinear" and 2.3 < fit.exponent < 4.5, fit  # the ODE's loss ~ t^-3


def test_scheduled_nesterov_turns_linear_at_a_large_step() -> None:
    lambda_min, lambda_max = analytic_extremes(2048)
    lr = 1 / lambda_max
    optimizer = {"name": "nesterov", "momentum": "schedule", "lr": lr}
    fit = train(width=2048, optimizers=[optimizer], steps=1500).optimizers[0].runs[0].fit
    assert fit.verdict == "linear", fit
    assert [piece.model for piece in fit.pieces] == ["power", "linear"]  # both faces, and where
    assert fit.change_step == fit.pieces[1].start_step > 10
    assert fit.rate == pytest.approx(1 - lr * lambda_min, abs=0.01)
    assert fit.rate > (1 - lr * lambda_min) ** 2  # slower than gradient descent at the same step


def test_ggn_converges_superlinearly_to_the_float_floor() -> None:
    # The default tolerance, 1e-24, is above the float64 floor of this loss (about 1e-28, where
    # the summation error of m = 8192 neurons is): every step until it counts.
    result = train(optimizers=[{"name": "ggn"}], steps=10, record_points=16)
    run = result.optimizers[0].runs[0]
    losses = [loss for loss in run.record["train_loss"] if loss is not None]
    assert run.steps <= 6 and losses[-1] < 1e-20
    digits = [-math.log10(loss) for loss in losses if loss < 1]  # -log10 of the loss, once below 1
    assert len(digits) >= 3
    assert all(later >= 2 * earlier for earlier, later in itertools.pairwise(digits)), digits


def test_a_step_far_above_two_over_lambda_max_diverges_without_an_exception() -> None:
    result = train(optimizers=[{"name": "gd", "lr": 50.0}], steps=200)
    run = result.optimizers[0].runs[0]
    assert run.status == "diverged" and run.steps < 200
    assert result.optimizers[0].rate is None and result.optimizers[0].predicted[0].rate > 1


def test_same_spec_and_seed_give_identical_trajectories() -> None:
    fields = {
        "width": 512,
        "optimizers": [{"name": "heavy_ball"}, {"name": "sgd", "batch_size": 8}],
        "steps": 50,
    }
    first, again = train(**fields), train(**fields)
    for one, other in zip(first.optimizers, again.optimizers, strict=True):
        assert one.runs[0].record == other.runs[0].record


def test_sgd_adam_and_a_test_split() -> None:
    dataset = {**SPHERE, "test_fraction": 0.25}
    result = train(
        dataset=dataset,
        width=512,
        optimizers=[{"name": "sgd", "batch_size": 8, "lr": 0.2}, {"name": "adam", "lr": 0.01}],
        steps=100,
        ntk_drift=True,
    )
    assert result.n == 24
    for optimizer in result.optimizers:
        record = optimizer.runs[0].record
        assert record["train_loss"][-1] < record["train_loss"][0]
        assert {"test_loss", "test_error", "ntk_drift"} <= set(record)
        assert 0 <= record["test_error"][-1] <= 1 and record["ntk_drift"][0] == 0 < record["ntk_drift"][-1]


def test_tanh_nets_train_against_their_empirical_kernel() -> None:
    result = train(
        network={"name": "two_layer", "activation": "tanh"},
        width=1024,
        optimizers=[{"name": "gd"}],
        steps=200,
    )
    assert [kernel.kernel for kernel in result.kernels] == ["empirical_init"]
    optimizer = result.optimizers[0]
    assert {p.kernel for p in optimizer.predicted} == {"empirical_init", "empirical_final"}
    record = optimizer.runs[0].record
    assert record["train_loss"][-1] < 1e-3 * record["train_loss"][0]
    assert record["residual_top"][-1] < record["residual_top"][0]
    with pytest.raises(ValueError, match="closed-form kernel"):
        TrainSpec.model_validate(
            {"network": {"name": "two_layer", "activation": "tanh"}, "auto_kernel": "analytic"}
        )


def test_standard_parameterization_trains_at_its_own_auto_step() -> None:
    network = {"name": "two_layer", "trained": "both", "parameterization": "standard"}
    result = train(
        network=network, width=1024, optimizers=[{"name": "gd"}, {"name": "heavy_ball"}], steps=300
    )
    for optimizer in result.optimizers:
        assert optimizer.runs[0].fit.verdict == "linear"
        assert optimizer.ratio["empirical_final"] == pytest.approx(1.0, abs=0.1)
    assert result.optimizers[0].hyperparameters["lr"] < 0.01  # lambda_max grows like m


def test_mean_field_leaves_the_kernel_regime_at_the_kernel_step() -> None:
    """In the mean-field scaling the kernel is O(1/m), so 1/lambda_max is O(m) and the features
    move: the linearised step is not stable, and the job says `diverged` rather than failing."""
    network = {"name": "two_layer", "trained": "both", "parameterization": "mean_field"}
    result = train(network=network, width=1024, optimizers=[{"name": "gd"}], steps=300)
    optimizer = result.optimizers[0]
    assert optimizer.hyperparameters["lr"] > 10
    assert optimizer.runs[0].status == "diverged" and optimizer.rate is None


def test_weight_change_counts_the_trained_layer_only() -> None:
    result_spec = {"network": {"name": "two_layer", "kappa": 0.01}, "width": 256, "steps": 50}
    problem_spec = TrainSpec.model_validate({"kind": "train", "dataset": SPHERE, **result_spec})
    data = make_data(problem_spec.dataset, torch.float64, torch.device("cpu"))
    H = analytic_kernel(problem_spec.network, data.X)
    _, vectors = torch.linalg.eigh(H)
    problem = Problem(
        problem_spec.network, 256, data.X, data.y, None, None, 1.0, vectors[:, -1], vectors[:, 0], True, False
    )
    [run] = engine.train(
        problem,
        "gd",
        {"lr": 0.5},
        engine.start(problem, [0]),
        0.0,
        60,
        record_steps(50, 16),
        lambda _s, _l: None,
    )
    W, W0 = run.final["W"], run.initial["W"]
    assert run.record["weight_change"][-1] == pytest.approx(float((W - W0).norm() / W0.norm()), rel=1e-12)


def test_scheduled_momentum_starts_at_zero() -> None:
    method = NesterovMethod({"lr": 0.1, "momentum": "schedule"}, None)  # type: ignore[arg-type]
    assert [method.coefficient(k) for k in (1, 2, 3)] == [0.0, 0.25, 0.4]  # (k - 1) / (k + 2)


def test_sgd_auto_step_accounts_for_the_batch() -> None:
    result = train(width=1024, optimizers=[{"name": "sgd", "batch_size": 1}], steps=300)
    optimizer = result.optimizers[0]
    assert "batch/n" in optimizer.auto and optimizer.runs[0].status != "diverged"
    record = optimizer.runs[0].record
    assert record["train_loss"][-1] < 0.5 * record["train_loss"][0]


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


def test_a_diverged_run_with_a_broken_final_kernel_still_reports() -> None:
    network = {"name": "two_layer", "activation": "quadratic", "kappa": 100.0}
    result = train(
        network=network, dtype="float32", width=256, optimizers=[{"name": "gd", "lr": 1e6}], steps=50
    )
    optimizer = result.optimizers[0]
    assert optimizer.runs[0].status == "diverged" and optimizer.final_kernel is None
    assert {p.kernel for p in optimizer.predicted} == {"analytic", "empirical_init"}


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


def test_regression_labels_get_no_test_error() -> None:
    dataset = {"name": "diabetes", "n": 64, "test_fraction": 0.25}
    result = train(dataset=dataset, width=256, optimizers=[{"name": "gd"}], steps=20)
    record = result.optimizers[0].runs[0].record
    assert "test_loss" in record and "test_error" not in record


@pytest.mark.parametrize(
    ("network", "optimizer"),
    [
        ({"name": "two_layer"}, {"name": "gd"}),
        ({"name": "two_layer", "trained": "both"}, {"name": "heavy_ball"}),
        ({"name": "two_layer"}, {"name": "nesterov", "momentum": "schedule"}),
        ({"name": "two_layer"}, {"name": "sgd", "batch_size": 8}),
        ({"name": "two_layer", "activation": "tanh"}, {"name": "adam", "lr": 0.01}),
        ({"name": "two_layer"}, {"name": "ggn", "batch_size": 16}),
        ({"name": "fully_connected", "depth": 3}, {"name": "heavy_ball"}),
    ],
)
def test_batched_replicates_give_the_sequential_numbers(network: dict, optimizer: dict) -> None:
    fields = {
        "network": network,
        "width": 256,
        "optimizers": [optimizer],
        "replicates": 3,
        "steps": 60,
        "record_points": 16,
        "tolerance": 0.0,
        "ntk_drift": True,
    }
    batched = train(batching="batched", **fields)
    sequential = train(batching="sequential", **fields)
    assert batched.batched and not sequential.batched
    for one, other in zip(batched.optimizers[0].runs, sequential.optimizers[0].runs, strict=True):
        assert (one.seed, one.status, one.steps) == (other.seed, other.status, other.steps)
        assert one.record.keys() == other.record.keys()
        for name, values in one.record.items():
            assert values == pytest.approx(other.record[name], rel=1e-9, abs=1e-12), name
    seeds = [run.record["train_loss"][-1] for run in batched.optimizers[0].runs]
    assert len(set(seeds)) == 3  # the replicates are different runs


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


def test_initialisation_is_drawn_in_float64_whatever_the_dtype() -> None:
    """A seed is one network in every dtype (and on every device): drawn in float64 on the CPU,
    then cast."""
    for network in (TwoLayerNet(), FullyConnected(depth=3)):
        wide = init_params(network, 5, 64, torch.Generator().manual_seed(2), torch.float64)
        narrow = init_params(network, 5, 64, torch.Generator().manual_seed(2), torch.float32)
        for name, value in narrow.items():
            assert value.dtype == torch.float32
            assert torch.equal(value, wide[name].float()), name


def test_auto_batching_stacks_on_gpus_and_small_cpu_jobs_only() -> None:
    def groups(width: int, device: str, batching: str = "auto") -> list[list[int]]:
        spec = TrainSpec.model_validate(
            {
                "kind": "train",
                "dataset": SPHERE,
                "width": width,
                "replicates": 4,
                "seed": 7,
                "batching": batching,
            }
        )
        return seed_groups(spec, torch.device(device))

    assert groups(1024, "cpu") == [[7, 8, 9, 10]]  # 4 x 32 x 1024 stacked activations: small
    assert groups(65536, "cpu") == [[7], [8], [9], [10]]  # 2^23 > CPU_STACK_MAX
    assert groups(65536, "cuda") == [[7, 8, 9, 10]]
    assert groups(1024, "cuda", "sequential") == [[7], [8], [9], [10]]
    assert groups(65536, "cpu", "batched") == [[7, 8, 9, 10]]
