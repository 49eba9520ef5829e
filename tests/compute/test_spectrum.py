"""Spectra of kernel matrices (workers.compute.spectrum) against numpy and known answers.

A researcher asks what a kernel's spectrum says and expects: eigenvalues sorted largest first that
agree with numpy's eigensolver, eigenvectors that are orthonormal and reconstruct the kernel; the
ends of the spectrum of a large kernel to be the full solver's; the effective rank of spectra whose
entropy is known by hand; the alignment of labels with a kernel to be 1 for the label kernel and
its formula otherwise; and the label energy to be the share of the squared projections of the
labels on each eigenvector. CPU, float64.
"""

import math

import numpy as np
import pytest
import torch

from schemas.experiments import FULL_SPECTRUM_MAX
from schemas.networks import FullyConnected, TwoLayerNet
from workers.compute.kernels.analytic import analytic_kernel, relu_ntk_first_layer
from workers.compute.kernels.operator import StoredKernel
from workers.compute.spectrum import (
    ROUNDING,
    alignment,
    effective_rank,
    eigendecompose,
    label_energy,
    spectrum_of,
)

from .helpers import points, sphere

F64 = torch.float64

# ---------------------------------------------------------------------------------------------
# a) eigenpairs
# ---------------------------------------------------------------------------------------------


def test_eigen_summaries_agree_with_numpy() -> None:
    H = analytic_kernel(FullyConnected(depth=3), points(n=40, d=6, scale=False))
    values, vectors = eigendecompose(H)
    np.testing.assert_allclose(values.numpy(), np.linalg.eigvalsh(H.numpy())[::-1], atol=1e-10)
    torch.testing.assert_close(vectors @ torch.diag(values) @ vectors.T, H, atol=1e-10, rtol=0)


def test_eigendecompose_sorts_largest_first_and_reconstructs_the_kernel() -> None:
    H = relu_ntk_first_layer(sphere(40, 6, seed=7))
    values, vectors = eigendecompose(H)
    assert values.shape == (40,) and vectors.shape == (40, 40)
    assert bool((values[:-1] >= values[1:]).all())
    torch.testing.assert_close(vectors @ torch.diag(values) @ vectors.T, H, atol=1e-10, rtol=0)
    torch.testing.assert_close(vectors.T @ vectors, torch.eye(40, dtype=F64), atol=1e-10, rtol=0)
    torch.testing.assert_close(H @ vectors, vectors * values, atol=1e-10, rtol=0)


def test_large_stored_kernels_get_their_extreme_pairs_with_residuals() -> None:
    X = points(n=FULL_SPECTRUM_MAX + 200, d=8, scale=False)
    H = analytic_kernel(TwoLayerNet(), X)
    pairs = spectrum_of(StoredKernel(H), 6, tolerance=1e-8)
    full = np.linalg.eigvalsh(H.numpy())[::-1]
    assert not pairs.complete and pairs.converged and pairs.residuals is not None
    np.testing.assert_allclose(pairs.values.numpy(), np.concatenate([full[:6], full[-6:]]), rtol=1e-10)
    residuals = (H @ pairs.vectors - pairs.vectors * pairs.values).norm(dim=0)
    torch.testing.assert_close(pairs.residuals, residuals, atol=1e-12, rtol=1e-6)
    floor = ROUNDING * math.sqrt(H.shape[0]) * torch.finfo(F64).eps * float(pairs.values[0])
    assert bool((residuals <= (1e-8 * pairs.values).clamp_min(floor) * 1.01).all())


# ---------------------------------------------------------------------------------------------
# b) summaries: effective rank, alignment, label energy
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spectrum", "expected"),
    [
        ([3.0] * 10, 10.0),  # flat: every direction counts
        ([5.0] + [0.0] * 9, 1.0),  # rank one
        ([2.0, 2.0, 0.0, 0.0], 2.0),  # two equal modes
        ([1.0, -1e-17, 0.0], 1.0),  # negative round-off counts as zero
        ([0.5, 0.25, 0.25], math.exp(1.5 * math.log(2.0))),  # entropy (1/2 ln 2 + 2 (1/4) ln 4)
    ],
)
def test_effective_rank_of_known_spectra(spectrum: list[float], expected: float) -> None:
    assert effective_rank(torch.tensor(spectrum, dtype=F64)) == pytest.approx(expected, rel=1e-12)


def test_alignment_is_one_for_the_label_kernel_and_matches_its_formula() -> None:
    y = torch.tensor([1.0, -2.0, 0.5], dtype=F64)
    assert alignment(StoredKernel(torch.outer(y, y)), y) == pytest.approx(1.0, abs=1e-14)
    K = analytic_kernel(TwoLayerNet(), points(n=3, d=3))
    Kn, yn = K.numpy(), y.numpy()
    expected = yn @ Kn @ yn / (np.linalg.norm(Kn) * (yn @ yn))
    assert alignment(StoredKernel(K), y) == pytest.approx(expected, abs=1e-14)


def test_label_energy_is_the_share_of_squared_projections() -> None:
    H = relu_ntk_first_layer(sphere(20, 4, seed=8))
    _, vectors = eigendecompose(H)
    y = torch.randn(20, generator=torch.Generator().manual_seed(9), dtype=F64)
    energy = label_energy(vectors, y)
    projections = torch.tensor([float(torch.dot(vectors[:, k], y)) ** 2 for k in range(20)], dtype=F64)
    torch.testing.assert_close(energy, projections / float(torch.dot(y, y)), atol=1e-12, rtol=0)
    assert float(energy.sum()) == pytest.approx(1.0, abs=1e-12)
    # labels along one eigenvector put all their energy on that mode
    one_mode = label_energy(vectors, 3.0 * vectors[:, 5])
    torch.testing.assert_close(one_mode, torch.eye(20, dtype=F64)[5], atol=1e-12, rtol=0)
