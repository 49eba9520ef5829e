"""The `kernel` experiment (workers.compute.kernels.experiment) as the service runs it.

A researcher submits a kernel job and expects: the spectrum of the analytic kernel of their
dataset, sorted, with its trace, effective rank, alignment and label energy; the same answer for
the same seed and another for another; the hand-computed kernel on inline points; the kernel matrix
itself on request; the ends of the spectrum only on a large dataset, computed without storing the
kernel, equal to the dense solver's; float32 when asked, and saying
so; finite-width kernels measured against it with replicates, closing in like m^-1/2, by the closed
form and by autograd alike; and requests that cannot be served refused with the reason. CPU,
float64 unless a test says otherwise.
"""

import base64

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from schemas import InlineDataset, KernelSpec, SphereDataset
from schemas.costs import ANALYTIC_SKETCH, ARCCOS_WORK, LOBPCG_PRODUCTS, sketch_bytes, sketch_rank
from schemas.experiments import FULL_SPECTRUM_MAX, STORED_MAX
from workers.compute import run_experiment
from workers.compute.datasets import make_data
from workers.compute.kernels.analytic import analytic_kernel
from workers.compute.kernels.operator import StoredKernel
from workers.compute.spectrum import alignment

from .helpers import SCALED, hand_kernel, hand_points

F64 = torch.float64


def kernel_spec(n: int = 64, d: int = 10, seed: int = 0, **fields: object) -> KernelSpec:
    return KernelSpec(dataset=SphereDataset(n=n, d=d, seed=seed), **fields)


def sphere_spec(**fields: object) -> KernelSpec:
    dataset = {"name": "sphere", "n": 48, "d": 6, "seed": 2, "labels": {"rule": "relu_teacher", "k": 3}}
    return KernelSpec.model_validate({"kind": "kernel", "dataset": dataset, **fields})


# ---------------------------------------------------------------------------------------------
# a) the analytic kernel's spectrum
# ---------------------------------------------------------------------------------------------


def test_kernel_experiment_on_the_sphere() -> None:
    result = run_experiment(kernel_spec())
    spectrum = result.spectrum
    assert (result.n, result.d, result.dtype, result.device) == (64, 10, "float64", "cpu")
    assert len(spectrum.eigenvalues) == 64
    assert spectrum.eigenvalues == sorted(spectrum.eigenvalues, reverse=True)
    assert spectrum.lambda_min == spectrum.eigenvalues[-1] > 0  # no two points are parallel
    assert spectrum.lambda_max == spectrum.eigenvalues[0]
    assert spectrum.condition_number == pytest.approx(spectrum.lambda_max / spectrum.lambda_min)
    # unit-norm points: H_ii = 1 (pi - 0) / (2 pi) = 1/2, so the trace is n / 2
    assert spectrum.trace == pytest.approx(32.0, abs=1e-10)
    assert sum(spectrum.eigenvalues) == pytest.approx(32.0, abs=1e-10)
    assert 1.0 < spectrum.effective_rank < 64.0
    assert sum(result.label_energy) == pytest.approx(1.0, abs=1e-12)
    assert result.empirical is None


def test_kernel_experiment_is_seeded() -> None:
    first = run_experiment(kernel_spec(seed=11))
    again = run_experiment(kernel_spec(seed=11))
    other = run_experiment(kernel_spec(seed=12))
    assert first.spectrum == again.spectrum and first.label_energy == again.label_energy
    assert first.spectrum.eigenvalues != other.spectrum.eigenvalues
    assert first.label_energy != other.label_energy


def test_kernel_experiment_on_inline_data_matches_the_hand_computed_kernel() -> None:
    spec = KernelSpec(dataset=InlineDataset(X=hand_points(SCALED), y=[1.0, -1.0, 1.0, -1.0]))
    result = run_experiment(spec)
    expected = torch.linalg.eigvalsh(torch.tensor(hand_kernel(SCALED), dtype=F64)).flip(0)
    assert (result.n, result.d) == (4, 2)
    torch.testing.assert_close(
        torch.tensor(result.spectrum.eigenvalues, dtype=F64), expected, atol=1e-12, rtol=0
    )
    assert result.spectrum.trace == pytest.approx(sum(r * r for r in SCALED) / 2, abs=1e-12)


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


def test_large_datasets_get_the_ends_of_the_spectrum_without_storing_the_kernel() -> None:
    dataset = {"name": "sphere", "n": FULL_SPECTRUM_MAX + 104, "d": 8, "labels": {"rule": "relu_teacher"}}
    spec = KernelSpec.model_validate({"dataset": dataset, "spectrum_k": 8, "spectrum_tolerance": 1e-6})
    assert not spec.stored()
    messages: list[str] = []
    result = run_experiment(spec, lambda _fraction, message: messages.append(message))
    spectrum = result.spectrum
    assert not spectrum.complete and spectrum.effective_rank is None and spectrum.converged
    assert len(spectrum.eigenvalues) == len(result.label_energy) == len(spectrum.residual_norms or []) == 16
    assert spectrum.eigenvalues == sorted(spectrum.eigenvalues, reverse=True)
    assert spectrum.trace == pytest.approx(spec.dataset.n / 2, abs=1e-8)  # unit norms: H_ii = 1/2
    assert 0 < sum(result.label_energy) <= 1 + 1e-12
    assert spectrum.products is not None and any("LOBPCG" in message for message in messages)
    # the same numbers as the dense solver and the stored kernel's alignment
    data = make_data(spec.dataset, F64, torch.device("cpu"))
    H = analytic_kernel(spec.network, data.X)
    full = torch.linalg.eigvalsh(H).flip(0)
    expected = torch.cat([full[:8], full[-8:]])
    torch.testing.assert_close(torch.tensor(spectrum.eigenvalues, dtype=F64), expected, rtol=1e-9, atol=0)
    assert result.alignment == pytest.approx(alignment(StoredKernel(H), data.y), rel=1e-12)


def test_float32_is_available_and_says_so() -> None:
    single = run_experiment(sphere_spec(dtype="float32"))
    double = run_experiment(sphere_spec())
    assert (single.dtype, double.dtype) == ("float32", "float64")
    np.testing.assert_allclose(single.spectrum.eigenvalues, double.spectrum.eigenvalues, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# b) finite-width kernels against the analytic one
# ---------------------------------------------------------------------------------------------


def test_kernel_experiment_with_an_empirical_kernel() -> None:
    fractions: list[float] = []
    spec = kernel_spec(empirical={"widths": [2**14], "seed": 3})
    result = run_experiment(spec, lambda fraction, _message: fractions.append(fraction))
    empirical = result.empirical
    assert empirical is not None and empirical.seed == 3 and empirical.width_exponent is None
    (row,) = empirical.rows
    assert (row.width, row.replicates, row.relative_frobenius.std) == (2**14, 1, 0.0)
    assert 0 < row.relative_frobenius.mean < 0.05
    assert 0 < row.relative_operator.mean < 0.05
    assert row.lambda_min.mean > 0
    assert fractions and all(0.0 <= f <= 1.0 for f in fractions) and fractions == sorted(fractions)
    # another first layer gives another (equally good) empirical kernel, the same analytic one
    reseeded = run_experiment(kernel_spec(empirical={"widths": [2**14], "seed": 4}))
    assert reseeded.empirical is not None
    assert reseeded.empirical.rows[0].relative_frobenius != row.relative_frobenius
    assert reseeded.spectrum == result.spectrum


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


# ---------------------------------------------------------------------------------------------
# c) requests that cannot be served
# ---------------------------------------------------------------------------------------------


def test_sizes_that_cannot_be_served_are_refused() -> None:
    with pytest.raises(ValidationError, match="return_matrix needs at most 2048 points"):
        KernelSpec.model_validate({"dataset": {"name": "sphere", "n": 4096}, "return_matrix": True})
    with pytest.raises(ValidationError, match="at most 8192"):
        KernelSpec.model_validate({"network": {"name": "fully_connected"}, "empirical": {"widths": [16384]}})
    with pytest.raises(ValidationError):
        KernelSpec.model_validate({"empirical": {"widths": []}})
    large = {"name": "sphere", "n": STORED_MAX + 1, "test_fraction": 0.25}
    with pytest.raises(ValidationError, match=f"hold the n x n kernel: at most {STORED_MAX} points"):
        KernelSpec.model_validate({"dataset": large, "regression": {}})
    with pytest.raises(ValidationError, match=f"at most {STORED_MAX} points"):
        KernelSpec.model_validate({"dataset": large, "empirical": {"widths": [64], "method": "autograd"}})
    deep = {"name": "fully_connected", "depth": 3}
    with pytest.raises(ValidationError, match=f"at most {STORED_MAX} points"):
        KernelSpec.model_validate({"dataset": large, "network": deep, "empirical": {"widths": [64]}})
    assert not KernelSpec.model_validate({"dataset": large, "empirical": {"widths": [64]}}).stored()
    spectrum_only = KernelSpec.model_validate({"dataset": {"name": "sphere", "n": 100_000}})
    assert not spectrum_only.stored()


def test_the_estimate_prices_the_matrix_free_path_by_its_products() -> None:
    """Above FULL_SPECTRUM_MAX points the kernel's entries are paid on every product, one more
    starts the iteration, and the float32 sketch of n / 10 vectors costs 2 n^2 r; the memory is
    O(n (d + r + k)): 32768 points fit in under 2 GiB (the matrix alone is 8; measured 1.5)."""
    spec = KernelSpec.model_validate({"dataset": {"name": "sphere", "n": 32768, "d": 10}})
    cost = spec.cost()
    assert cost.memory_bytes < 2**31
    n = 32768
    assert sketch_rank(n, ANALYTIC_SKETCH) == 3276 and sketch_bytes(n, ANALYTIC_SKETCH) == 12.0 * n * 3276
    one_product = n * n * (10 + ARCCOS_WORK) / 2 + 2.0 * n * n * (3 * 32 + 8)
    sketch = 2.0 * n * n * sketch_rank(n, ANALYTIC_SKETCH)
    assert cost.flops == pytest.approx((LOBPCG_PRODUCTS + 1) * one_product + sketch)
    cheaper = KernelSpec.model_validate({"dataset": {"name": "sphere", "n": 32768}, "spectrum_products": 10})
    assert cheaper.cost().flops == pytest.approx(11 * one_product + sketch)


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


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_spec_without_cuda_is_a_user_error() -> None:
    with pytest.raises(ValueError, match="cuda"):
        run_experiment(kernel_spec(device="cuda"))
