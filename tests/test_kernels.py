"""Analytic and finite-width tangent kernels of two-layer and deep nets, against independent
computations: torch.func Jacobians, Monte Carlo over random networks, numpy's eigensolver."""

import base64

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from schemas import InlineDataset, KernelSpec
from schemas.networks import FullyConnected, NetworkSpec, TwoLayerNet
from workers.compute import run_experiment
from workers.compute.datasets import uniform_sphere
from workers.compute.kernels.analytic import analytic_kernel, relu_nngp, relu_ntk_first_layer
from workers.compute.kernels.empirical import (
    autograd_kernel,
    fully_connected_empirical,
    two_layer_empirical,
    two_layer_kernel_sum,
)
from workers.compute.networks import init_params
from workers.compute.spectrum import alignment, eigendecompose, extreme_eigenpairs

F64 = torch.float64
TWO_LAYER = [
    TwoLayerNet(activation=activation, trained=trained)
    for activation in ("relu", "quadratic")
    for trained in ("first", "second", "both")
] + [TwoLayerNet(activation="quadratic", trained="both", kappa=0.5), TwoLayerNet(trained="both", kappa=2.0)]
DEEP = [FullyConnected(depth=depth) for depth in (2, 3, 4)]


def points(n: int = 10, d: int = 5, seed: int = 0, scale: bool = True) -> torch.Tensor:
    """n points on the sphere, with norms in [0.5, 1.5] unless `scale` is off."""
    generator = torch.Generator().manual_seed(seed)
    X = uniform_sphere(n, d, generator)
    return X * (0.5 + torch.rand(n, 1, generator=generator, dtype=F64)) if scale else X


@pytest.mark.parametrize("network", TWO_LAYER + DEEP, ids=lambda net: net.describe())
def test_closed_forms_equal_autograd_jacobians(network: NetworkSpec) -> None:
    X = points()
    params = init_params(network, X.shape[1], 48, torch.Generator().manual_seed(1), F64)
    expected = autograd_kernel(network, params, X)
    if isinstance(network, TwoLayerNet):
        closed = two_layer_kernel_sum(network, X, params["W"]) / params["W"].shape[0]
    else:
        closed = fully_connected_empirical(network, params, X)
    torch.testing.assert_close(closed, expected, atol=1e-10, rtol=0)


def test_depth_two_is_the_two_layer_net_with_both_layers_trained() -> None:
    X = points()
    both = analytic_kernel(TwoLayerNet(trained="both"), X)
    torch.testing.assert_close(analytic_kernel(FullyConnected(depth=2), X), both, atol=1e-14, rtol=0)
    torch.testing.assert_close(both, relu_ntk_first_layer(X) + relu_nngp(X), atol=1e-14, rtol=0)


def monte_carlo(
    network: NetworkSpec, X: torch.Tensor, m: int, replicates: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard error, entry by entry, of the kernels of `replicates` random nets."""
    kernels = []
    for seed in range(replicates):
        generator = torch.Generator().manual_seed(100 + seed)
        if isinstance(network, TwoLayerNet):
            kernels.append(two_layer_empirical(network, X, m, generator, lambda _done: None))
        else:
            params = init_params(network, X.shape[1], m, generator, F64)
            kernels.append(fully_connected_empirical(network, params, X))
    stack = torch.stack(kernels)
    return stack.mean(0), stack.std(0) / replicates**0.5


@pytest.mark.parametrize(
    ("network", "m"),
    [
        (TwoLayerNet(activation="relu", trained="second"), 2**14),
        (TwoLayerNet(activation="quadratic", trained="first"), 2**14),
        (TwoLayerNet(activation="quadratic", trained="second"), 2**14),
        (TwoLayerNet(activation="quadratic", trained="both", kappa=0.7), 2**14),
        (TwoLayerNet(activation="relu", trained="both", kappa=3.0), 2**14),
        (FullyConnected(depth=3), 1024),
    ],
    ids=lambda value: value.describe() if hasattr(value, "describe") else str(value),
)
def test_analytic_kernels_are_the_mean_of_random_networks(network: NetworkSpec, m: int) -> None:
    X = points(n=8, d=4)
    mean, standard_error = monte_carlo(network, X, m, replicates=12)
    analytic = analytic_kernel(network, X)
    z = ((mean - analytic).abs() / standard_error).max()
    assert z < 5, f"worst entry {float(z):.1f} standard errors from the analytic kernel"
    assert float(standard_error.max() / analytic.abs().max()) < 0.05  # the test has resolution


def test_eigen_summaries_agree_with_numpy() -> None:
    H = analytic_kernel(FullyConnected(depth=3), points(n=40, d=6, scale=False))
    values, vectors = eigendecompose(H)
    np.testing.assert_allclose(values.numpy(), np.linalg.eigvalsh(H.numpy())[::-1], atol=1e-10)
    torch.testing.assert_close(vectors @ torch.diag(values) @ vectors.T, H, atol=1e-10, rtol=0)


def test_alignment_is_one_for_the_label_kernel_and_matches_its_formula() -> None:
    y = torch.tensor([1.0, -2.0, 0.5], dtype=F64)
    assert alignment(torch.outer(y, y), y) == pytest.approx(1.0, abs=1e-14)
    K = analytic_kernel(TwoLayerNet(), points(n=3, d=3))
    Kn, yn = K.numpy(), y.numpy()
    expected = yn @ Kn @ yn / (np.linalg.norm(Kn) * (yn @ yn))
    assert alignment(K, y) == pytest.approx(expected, abs=1e-14)


def sphere_spec(**fields: object) -> KernelSpec:
    dataset = {"name": "sphere", "n": 48, "d": 6, "seed": 2, "labels": {"rule": "relu_teacher", "k": 3}}
    return KernelSpec.model_validate({"kind": "kernel", "dataset": dataset, **fields})


def test_the_width_law_is_measured_with_replicates() -> None:
    empirical = {"widths": [64, 256, 1024, 4096], "replicates": 4, "seed": 0}
    result = run_experiment(sphere_spec(empirical=empirical))
    study = result.empirical
    assert [row.width for row in study.rows] == [64, 256, 1024, 4096]
    assert all(row.replicates == 4 and row.relative_frobenius.std > 0 for row in study.rows)
    assert -0.65 < study.width_exponent < -0.35  # the m^-1/2 law
    assert all(row.relative_operator.mean <= row.relative_frobenius.mean * 1.01 for row in study.rows)
    assert result.cumulative_energy[-1] == pytest.approx(1.0, abs=1e-12)
    assert 0 < result.alignment <= 1


def test_both_empirical_methods_give_the_same_deep_kernels() -> None:
    network = {"name": "fully_connected", "depth": 3}
    closed = run_experiment(sphere_spec(network=network, empirical={"widths": [32, 64], "replicates": 2}))
    jacobian = run_experiment(
        sphere_spec(network=network, empirical={"widths": [32, 64], "replicates": 2, "method": "autograd"})
    )
    for ours, theirs in zip(closed.empirical.rows, jacobian.empirical.rows, strict=True):
        assert ours.relative_frobenius.mean == pytest.approx(theirs.relative_frobenius.mean, abs=1e-10)
        assert ours.lambda_min.mean == pytest.approx(theirs.lambda_min.mean, abs=1e-10)


def test_the_kernel_matrix_comes_back_on_request() -> None:
    result = run_experiment(sphere_spec(return_matrix=True, network={"name": "two_layer", "trained": "both"}))
    encoded = result.matrix
    upper = np.frombuffer(base64.b64decode(encoded.data), dtype="<f8")
    assert encoded.n == 48 and upper.size == 48 * 49 // 2
    matrix = np.zeros((48, 48))
    matrix[np.triu_indices(48)] = upper
    matrix = matrix + np.triu(matrix, 1).T
    eigenvalues = np.linalg.eigvalsh(matrix)[::-1]
    np.testing.assert_allclose(eigenvalues, result.spectrum.eigenvalues, atol=1e-10)
    assert run_experiment(sphere_spec()).matrix is None


def test_sizes_that_cannot_be_served_are_refused() -> None:
    with pytest.raises(ValidationError, match="return_matrix needs at most 2048 points"):
        KernelSpec.model_validate({"dataset": {"name": "sphere", "n": 4096}, "return_matrix": True})
    with pytest.raises(ValidationError, match="at most 8192"):
        KernelSpec.model_validate({"network": {"name": "fully_connected"}, "empirical": {"widths": [16384]}})
    with pytest.raises(ValidationError):
        KernelSpec.model_validate({"empirical": {"widths": []}})


def test_extreme_eigenpairs_match_the_full_solver() -> None:
    H = analytic_kernel(TwoLayerNet(), points(n=600, d=8, scale=False))
    values, vectors = extreme_eigenpairs(H, 10)
    full = np.linalg.eigvalsh(H.numpy())[::-1]
    np.testing.assert_allclose(values.numpy(), np.concatenate([full[:10], full[-10:]]), atol=1e-10)
    torch.testing.assert_close(H @ vectors, vectors * values, atol=1e-10, rtol=0)


def test_large_datasets_get_the_ends_of_the_spectrum() -> None:
    spec = KernelSpec.model_validate({"dataset": {"name": "sphere", "n": 4200, "d": 8}, "spectrum_k": 8})
    result = run_experiment(spec)
    spectrum = result.spectrum
    assert not spectrum.complete and spectrum.effective_rank is None
    assert len(spectrum.eigenvalues) == len(result.label_energy) == 16
    assert spectrum.eigenvalues == sorted(spectrum.eigenvalues, reverse=True)
    assert spectrum.trace == pytest.approx(4200 / 2, abs=1e-8)  # unit norms: H_ii = 1/2
    assert 0 < spectrum.lambda_min < spectrum.lambda_max < spectrum.trace
    assert 0 < sum(result.label_energy) <= 1 + 1e-12


def test_float32_is_available_and_says_so() -> None:
    single = run_experiment(sphere_spec(dtype="float32"))
    double = run_experiment(sphere_spec())
    assert (single.dtype, double.dtype) == ("float32", "float64")
    np.testing.assert_allclose(single.spectrum.eigenvalues, double.spectrum.eigenvalues, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("parameterization", ["standard", "mean_field"])
def test_other_parameterizations_scale_the_kernel_with_width(parameterization: str) -> None:
    network = TwoLayerNet(trained="both", parameterization=parameterization)
    X, m = points(n=8, d=4), 4096
    kernels = [
        autograd_kernel(network, init_params(network, 4, m, torch.Generator().manual_seed(seed), F64), X)
        for seed in range(4)
    ]
    analytic = analytic_kernel(network, X, m)
    mean = torch.stack(kernels).mean(0)
    assert float(torch.linalg.matrix_norm(mean - analytic) / torch.linalg.matrix_norm(analytic)) < 0.03
    ntk = analytic_kernel(TwoLayerNet(trained="both"), X)
    ratio = float(analytic.trace() / ntk.trace())
    assert ratio > 100 if parameterization == "standard" else ratio < 1e-2


def test_kernel_jobs_need_a_closed_form_and_the_ntk_parameterization() -> None:
    with pytest.raises(ValidationError, match="no closed-form kernel"):
        KernelSpec.model_validate({"network": {"name": "two_layer", "activation": "tanh"}})
    with pytest.raises(ValidationError, match="ntk parameterization"):
        KernelSpec.model_validate({"network": {"name": "two_layer", "parameterization": "mean_field"}})


def test_all_zero_labels_are_refused_and_fail_with_a_reason() -> None:
    X = [[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]]
    zero = {"name": "inline", "X": X, "y": [0.0, 0.0, 0.0]}
    with pytest.raises(ValidationError, match="y is all zero"):
        KernelSpec.model_validate({"dataset": zero})
    # labels the API cannot see (a generated or bundled dataset) reach the worker, which says why
    spec = KernelSpec().model_copy(update={"dataset": InlineDataset.model_validate(zero)})
    with pytest.raises(ValueError, match="labels are all zero"):
        run_experiment(spec)
