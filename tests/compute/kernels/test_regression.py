"""Kernel ridge regression with the analytic NTK: the infinitely wide net's test predictions.

A researcher adds `"regression": {"ridge": 0}` to a kernel job on a dataset with a test split and
expects: the predictions scikit-learn's KernelRidge makes on the same kernel matrices; at ridge 0
the training labels reproduced exactly; a huge ridge shrinking every prediction to K_* y / ridge;
a clear error without a test split or on a singular kernel; the deep kernel too; and train jobs
reporting their nets' test MSE beside it. CPU, float64.
"""

import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from sklearn.kernel_ridge import KernelRidge

from schemas import KernelResult, KernelSpec, TrainResult, TrainSpec
from schemas.networks import FullyConnected, TwoLayerNet
from workers.compute import run_experiment
from workers.compute.datasets import make_data
from workers.compute.kernels.analytic import analytic_kernel
from workers.compute.kernels.regression import joint_kernel, ridge_predictions
from workers.compute.networks import forward
from workers.compute.training.engine import Problem, record_steps, start, train
from workers.compute.training.experiment import run_result

F64 = torch.float64
CPU = torch.device("cpu")
CONCEPT = {
    "name": "sphere",
    "n": 120,
    "d": 6,
    "seed": 1,
    "test_fraction": 0.25,
    "labels": {"rule": "concept", "k": 3},
}
NETWORKS = {
    "two_layer_first": TwoLayerNet(),
    "two_layer_both": TwoLayerNet(trained="both"),
    "fully_connected_3": FullyConnected(depth=3),
}


def kernel_job(**fields: object) -> KernelResult:
    spec = {"kind": "kernel", "dataset": CONCEPT, "regression": {"ridge": 0.0}, **fields}
    result = run_experiment(KernelSpec.model_validate(spec))
    assert isinstance(result, KernelResult)
    return result


def blocks(network: object) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """K (90, 90), K_* (30, 90), y (90,), y_* (30,) of the concept dataset under `network`."""
    data = make_data(KernelSpec.model_validate({"dataset": CONCEPT}).dataset, F64, CPU)
    assert data.X_test is not None and data.y_test is not None
    K, K_test = joint_kernel(network, data.X, data.X_test)  # type: ignore[arg-type]
    return K, K_test, data.y, data.y_test


# ---------------------------------------------------------------------------------------------
# the solve against an independent implementation and its two limits
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ridge", [0.0, 1e-6, 1e-2, 1.0, 1e3])
@pytest.mark.parametrize("network", list(NETWORKS), ids=list(NETWORKS))
def test_predictions_match_scikit_learn_kernel_ridge(network: str, ridge: float) -> None:
    K, K_test, y, _ = blocks(NETWORKS[network])
    fitted, predicted = ridge_predictions(K, K_test, y, ridge)
    reference = KernelRidge(alpha=ridge, kernel="precomputed").fit(K.numpy(), y.numpy())
    np.testing.assert_allclose(fitted.numpy(), reference.predict(K.numpy()), rtol=0, atol=1e-10)
    np.testing.assert_allclose(predicted.numpy(), reference.predict(K_test.numpy()), rtol=0, atol=1e-10)


def test_joint_kernel_blocks_are_the_kernels_of_the_parts() -> None:
    """The training block is the training points' own kernel; the cross block of the first-layer
    ReLU kernel is x_*.x (pi - theta) / (2 pi), written out here with numpy."""
    K, K_test, _, _ = blocks(TwoLayerNet())
    data = make_data(KernelSpec.model_validate({"dataset": CONCEPT}).dataset, F64, CPU)
    assert data.X_test is not None
    torch.testing.assert_close(K, analytic_kernel(TwoLayerNet(), data.X), atol=1e-14, rtol=0)
    X, X_test = data.X.numpy(), data.X_test.numpy()
    cosine = np.clip(X_test @ X.T, -1.0, 1.0)  # unit vectors
    expected = cosine * (math.pi - np.arccos(cosine)) / (2 * math.pi)
    np.testing.assert_allclose(K_test.numpy(), expected, rtol=0, atol=1e-14)


@pytest.mark.parametrize("network", list(NETWORKS), ids=list(NETWORKS))
def test_ridge_zero_interpolates_the_training_labels(network: str) -> None:
    K, K_test, y, _ = blocks(NETWORKS[network])
    fitted, _ = ridge_predictions(K, K_test, y, 0.0)
    torch.testing.assert_close(fitted, y, atol=1e-12, rtol=0)


def test_a_huge_ridge_shrinks_predictions_to_k_y_over_ridge() -> None:
    """(K + r I)^-1 = I / r - K / r^2 + ...: r f(X_*) -> K_* y with relative error ~|K| / r."""
    K, K_test, y, _ = blocks(TwoLayerNet())
    ridge = 1e8
    _, predicted = ridge_predictions(K, K_test, y, ridge)
    assert float(predicted.abs().max()) < 1e-6
    torch.testing.assert_close(ridge * predicted, K_test @ y, rtol=1e-6, atol=1e-12)


def test_a_singular_kernel_asks_for_a_ridge() -> None:
    """Four points, each twice: however the two test points fall, two duplicate pairs stay in
    the training set and make K exactly singular."""
    points = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.6, 0.8, 0.0]]
    labels = [1.0, -1.0, 1.0, -1.0]
    inline = {"name": "inline", "X": points + points, "y": labels + labels, "test_fraction": 0.25}
    with pytest.raises(ValueError, match=r"singular.*set regression\.ridge > 0"):
        kernel_job(dataset=inline)
    result = kernel_job(dataset=inline, regression={"ridge": 1e-6})
    assert result.regression is not None and result.regression.train_mse < 1e-10
    assert result.regression.test_error is not None  # labels +1 and -1


# ---------------------------------------------------------------------------------------------
# the `kernel` experiment
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dataset",
    [
        {"name": "sphere", "n": 64},
        {"name": "iris", "n": 60},
        {"name": "inline", "X": [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], "y": [1.0, -1.0, 1.0]},
    ],
    ids=["sphere", "real", "inline"],
)
def test_regression_without_a_test_split_is_rejected(dataset: dict) -> None:
    with pytest.raises(ValidationError, match=r"set dataset\.test_fraction > 0"):
        KernelSpec.model_validate({"dataset": dataset, "regression": {}})


def test_deep_kernel_regression_end_to_end_on_a_concept() -> None:
    """Depth-3 ReLU NTK on a two-layer concept (unit-variance labels): the job's numbers are
    scikit-learn's on the same split, the interpolant beats predicting zero, and the spectrum is
    the one the job reports without regression."""
    network = {"name": "fully_connected", "depth": 3}
    result = kernel_job(network=network)
    regression = result.regression
    assert regression is not None
    assert (regression.n_train, regression.n_test, result.n) == (90, 30, 90)
    assert regression.kernel == result.kernel and regression.ridge == 0.0
    assert regression.train_mse < 1e-20 and regression.test_error is None  # real-valued labels
    K, K_test, y, y_test = blocks(FullyConnected(depth=3))
    reference = KernelRidge(alpha=0.0, kernel="precomputed").fit(K.numpy(), y.numpy())
    test_mse = float(np.mean((reference.predict(K_test.numpy()) - y_test.numpy()) ** 2))
    assert regression.test_mse == pytest.approx(test_mse, rel=1e-10)
    assert regression.test_mse < 0.5 * float(y_test.square().mean())
    assert "regression" in result.seconds
    alone = run_experiment(KernelSpec.model_validate({"dataset": CONCEPT, "network": network}))
    assert isinstance(alone, KernelResult) and alone.regression is None
    np.testing.assert_allclose(result.spectrum.eigenvalues, alone.spectrum.eigenvalues, rtol=1e-10)


def test_sign_labels_get_a_test_error() -> None:
    dataset = {**CONCEPT, "labels": {"rule": "random_sign"}}
    regression = kernel_job(dataset=dataset, regression={"ridge": 0.1}).regression
    assert regression is not None and regression.test_error is not None
    assert 0.0 <= regression.test_error <= 1.0


def test_cost_counts_the_cholesky_solve() -> None:
    """n = 120 points, 30 held out: n_train^3 / 3 + 4 n_train^2 + 2 n_test n_train more flops."""
    plain = KernelSpec.model_validate({"dataset": CONCEPT})
    regression = KernelSpec.model_validate({"dataset": CONCEPT, "regression": {"ridge": 1.0}})
    extra = 90**3 / 3 + 4 * 90**2 + 2 * 30 * 90
    assert regression.cost().flops - plain.cost().flops == pytest.approx(extra)
    assert regression.cost().memory_bytes > plain.cost().memory_bytes


# ---------------------------------------------------------------------------------------------
# the nets' test MSE beside the kernel's
# ---------------------------------------------------------------------------------------------


def test_run_test_mse_is_the_final_nets_mean_squared_test_error() -> None:
    """A run with the mean loss (scale 1 / n_train) reports mean_test (f - y)^2 of its final net."""
    spec = TrainSpec.model_validate({"dataset": CONCEPT, "loss": "mean"})
    data = make_data(spec.dataset, F64, CPU)
    assert data.X_test is not None and data.y_test is not None
    n = data.X.shape[0]
    unit = torch.ones(n, dtype=F64) / math.sqrt(n)
    network = TwoLayerNet()
    problem = Problem(
        network, 256, data.X, data.y, data.X_test, data.y_test, 1.0 / n, unit, unit, False, False
    )
    [run] = train(
        problem, "gd", {"lr": 20.0}, start(problem, [0]), 0.0, 60, record_steps(30, 8), lambda _s, _l: None
    )
    direct = float((forward(network, run.final, data.X_test) - data.y_test).square().mean())
    assert run_result(run, 0.0, problem).test_mse == pytest.approx(direct, rel=1e-12)


def test_train_jobs_report_test_mse_only_with_a_test_split() -> None:
    fields = {"kind": "train", "width": 256, "optimizers": [{"name": "gd"}], "steps": 20}
    split = run_experiment(TrainSpec.model_validate({**fields, "dataset": CONCEPT}))
    whole = run_experiment(TrainSpec.model_validate({**fields, "dataset": {**CONCEPT, "test_fraction": 0}}))
    assert isinstance(split, TrainResult) and isinstance(whole, TrainResult)
    [run] = split.optimizers[0].runs
    assert run.test_mse is not None and run.test_mse > 0
    assert whole.optimizers[0].runs[0].test_mse is None
