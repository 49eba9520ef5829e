"""The `train` experiment (workers.compute.training.experiment) as the service runs it.

A researcher trains small, wide two-layer ReLU nets and expects the momentum story of Bu, Xu &
Chen (2021): GD, heavy ball and constant Nesterov linear, heavy ball at Polyak's step several times
faster than GD, measured rates matching the final empirical kernel, weights that barely move;
Nesterov's (k-1)/(k+2) schedule sublinear at a small step and linear at a large one; Gram-Gauss-
Newton converging superlinearly to the float floor, with order 2 on a smooth net and order 1 when
damped or on mini-batches; divergence reported, not raised; the same
trajectories for the same seed; SGD, Adam, tanh nets, other parameterizations and regression
labels handled with the records they call for. CPU, float64 unless a test says otherwise.
"""

import itertools
import math

import pytest

from schemas import TrainResult, TrainSpec

from .helpers import SPHERE, train


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
    # ReLU makes the net only piecewise linear in W: the error after a step comes from patterns
    # that flip, quadratic on average but lumpy; its measured order is between 1 and 2
    assert run.order.verdict in ("quadratic", "superlinear") and run.order.order > 1.25, run.order


TANH = {"name": "two_layer", "activation": "tanh"}


def test_ggn_on_a_smooth_net_converges_quadratically_and_gd_linearly() -> None:
    """Cai et al. (2019): full-batch GGN converges quadratically on an over-parameterized
    regression. On a smooth (tanh) net, 512 wide on 32 points (4096 parameters) in float64, it
    reaches the tolerance in 4 steps, every one of them above the rounding floor; the order of
    convergence, the slope of log L_{k+1} on log L_k, is 2. GD on the same net: order 1."""
    result = train(network=TANH, width=512, optimizers=[{"name": "ggn"}, {"name": "gd"}], steps=200)
    ggn, gd = (optimizer.runs[0] for optimizer in result.optimizers)
    assert ggn.status == "converged" and 4 <= ggn.steps <= 6
    assert len(ggn.step_losses) == ggn.steps + 1
    assert ggn.step_losses[-1] == pytest.approx(ggn.final_loss, rel=1e-12)
    assert ggn.order.verdict == "quadratic" and ggn.order.steps_used >= 4, ggn.order
    assert ggn.order.order == pytest.approx(2.0, abs=max(0.1, 2 * ggn.order.order_se))
    assert 1.8 < ggn.order.triple_low <= ggn.order.triple_high < 2.2
    assert gd.status == "steps" and len(gd.step_losses) == 64
    assert gd.order.verdict == "linear" and gd.order.order == pytest.approx(1.0, abs=0.05), gd.order


@pytest.mark.parametrize("ggn", [{"name": "ggn", "damping": 0.1}, {"name": "ggn", "batch_size": 16}])
def test_damped_and_minibatch_ggn_converge_with_order_one(ggn: dict) -> None:
    """Damping lambda leaves a residual factor lambda / (lambda + sigma_i) per Gram eigenvalue
    sigma_i, and a batch fits only its own points: both converge linearly, not quadratically."""
    run = train(network=TANH, width=512, optimizers=[ggn], steps=200).optimizers[0].runs[0]
    assert run.order.verdict == "linear" and run.order.order == pytest.approx(1.0, abs=0.05), run.order
    assert run.fit.verdict == "linear"


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


def test_a_diverged_run_with_a_broken_final_kernel_still_reports() -> None:
    network = {"name": "two_layer", "activation": "quadratic", "kappa": 100.0}
    result = train(
        network=network, dtype="float32", width=256, optimizers=[{"name": "gd", "lr": 1e6}], steps=50
    )
    optimizer = result.optimizers[0]
    assert optimizer.runs[0].status == "diverged" and optimizer.final_kernel is None
    assert {p.kernel for p in optimizer.predicted} == {"analytic", "empirical_init"}


def test_regression_labels_get_no_test_error() -> None:
    dataset = {"name": "diabetes", "n": 64, "test_fraction": 0.25}
    result = train(dataset=dataset, width=256, optimizers=[{"name": "gd"}], steps=20)
    record = result.optimizers[0].runs[0].record
    assert "test_loss" in record and "test_error" not in record
