"""Extreme eigenpairs of kernels that are only applied (workers.compute.lobpcg, through
workers.compute.spectrum.spectrum_of) against the full eigensolver.

A researcher asks for the ends of a large kernel's spectrum and expects: the k largest and k
smallest eigenvalues of the dense solver, to the tolerance asked; residual norms that are the true
|K v - lambda v| of the returned unit vectors and bound each eigenvalue's error; the bottom found
through its cluster in tens of products, not hundreds; a rank-deficient kernel's null space found
at once; a budget of products that is respected and said to fall short; and the same numbers on
every run. CPU, float64.
"""

import numpy as np
import pytest
import torch

from schemas.networks import FullyConnected, NetworkSpec, TwoLayerNet
from workers.compute.kernels.analytic import KernelBlocks, analytic_kernel, kernel_of
from workers.compute.kernels.operator import BlockKernel
from workers.compute.lobpcg import Nystrom, Sketch, extreme_eigenpairs, orthonormal_combination
from workers.compute.spectrum import rounding_level, sketch_of, spectrum_of

from .helpers import points, sphere

F64 = torch.float64


def operator(network: NetworkSpec, X: torch.Tensor) -> BlockKernel:
    return BlockKernel(KernelBlocks(kernel_of(network, X.shape[1]), X))


@pytest.mark.parametrize(
    ("network", "X"),
    [(TwoLayerNet(), sphere(1500, 10, seed=3)), (FullyConnected(depth=3), points(n=900, d=5, seed=4))],
    ids=["H_inf on the sphere", "depth 3, scaled points"],
)
def test_extreme_pairs_match_the_dense_solver_within_their_residuals(
    network: NetworkSpec, X: torch.Tensor
) -> None:
    k = 6
    pairs = spectrum_of(operator(network, X), k, tolerance=1e-6)
    H = analytic_kernel(network, X)
    full = np.linalg.eigvalsh(H.numpy())[::-1]
    expected = np.concatenate([full[:k], full[-k:]])
    assert pairs.converged and pairs.residuals is not None and not pairs.complete
    assert 2 <= pairs.products < 150
    values = pairs.values.numpy()
    np.testing.assert_allclose(values, expected, rtol=1e-9)  # the error is ~ residual^2 / gap
    residuals = (H @ pairs.vectors - pairs.vectors * pairs.values).norm(dim=0)
    torch.testing.assert_close(pairs.residuals, residuals, rtol=1e-4, atol=1e-13)
    assert bool((residuals <= 1e-6 * pairs.values.abs()).all())
    assert np.all(np.abs(values - expected) <= pairs.residuals.numpy() + 1e-13)
    # Rayleigh-Ritz from a subspace: the top values from below, the bottom ones from above
    assert np.all(values[:k] <= expected[:k] + 1e-12) and np.all(values[k:] >= expected[k:] - 1e-12)
    top, bottom = pairs.vectors[:, :k], pairs.vectors[:, k:]
    for block in (top, bottom):  # each end is orthonormal; the two ends as far as converged
        torch.testing.assert_close(block.T @ block, torch.eye(k, dtype=F64), atol=1e-12, rtol=0)
    assert float((top.T @ bottom).abs().max()) <= 1e-7


def test_the_preconditioner_takes_the_bottom_through_its_cluster() -> None:
    X = sphere(1500, 10, seed=3)
    K = operator(TwoLayerNet(), X)
    with_nystrom = spectrum_of(K, 6, tolerance=1e-6)
    omega = torch.linalg.qr(torch.randn(1500, 256, generator=torch.Generator().manual_seed(0), dtype=F64))[0]
    nystrom = Nystrom.from_sketch(omega, K(omega))
    H = analytic_kernel(TwoLayerNet(), X)
    assert nystrom.full_rank()
    # the sketch is an approximation from below: lam_i <= lambda_i (Frangella et al. 2023)
    full = torch.linalg.eigvalsh(H).flip(0)
    assert bool((nystrom.lam <= full[:256] * (1 + 1e-10)).all())
    assert float(nystrom.lam[0]) == pytest.approx(float(full[0]), rel=0.05)  # one pass: the top to ~1%
    assert with_nystrom.products < 100


def test_a_float32_sketch_preconditions_as_well_as_the_kernel_itself() -> None:
    """The analytic kernel's preconditioner comes from its float32 copy (half the memory and
    time of the wide sketch the bottom needs): the same pairs, in about as many products (one
    more starts the iteration from K), and Nystrom's bound lam_i <= lambda_i to float32 rounding."""
    X = sphere(2000, 10, seed=8)
    K = operator(TwoLayerNet(), X)
    like = torch.empty(0, dtype=F64)

    def pairs(sketch: Sketch):  # type: ignore[no-untyped-def]
        return extreme_eigenpairs(K, K.n, 8, like, 1e-6, 300, sketch, rounding_level(K))

    lowered, exact = pairs(sketch_of(K)), pairs(Sketch(K, 256, F64))
    assert sketch_of(K).dtype == torch.float32 and lowered.converged and exact.converged
    torch.testing.assert_close(lowered.values, exact.values, rtol=1e-9, atol=0)
    assert lowered.products <= 1.25 * exact.products, (lowered.products, exact.products)  # 98 vs 90
    omega = torch.linalg.qr(torch.randn(2000, 256, generator=torch.Generator().manual_seed(1)))[0]
    nystrom = Nystrom.from_sketch(omega, K.lowered()(omega))
    full = torch.linalg.eigvalsh(analytic_kernel(TwoLayerNet(), X)).flip(0)[:256]
    assert nystrom.U.dtype == torch.float32 and nystrom.full_rank()
    assert bool((nystrom.lam.double() <= full * (1 + 1e-5)).all())


def test_a_rank_deficient_kernel_has_its_null_space_found_at_once() -> None:
    X = points(n=600, d=6, seed=5)
    network = TwoLayerNet(activation="quadratic")  # 4 (x_i.x_j)^2: rank <= d (d + 1) / 2 = 21
    pairs = spectrum_of(operator(network, X), 4, tolerance=1e-6)
    H = analytic_kernel(network, X)
    top = torch.linalg.eigvalsh(H).flip(0)[:4]
    assert pairs.converged and pairs.products <= 10
    torch.testing.assert_close(pairs.values[:4], top, rtol=1e-9, atol=0)
    assert float(pairs.values[4:].abs().max()) <= 1e-10 * float(top[0])
    residuals = (H @ pairs.vectors[:, 4:]).norm(dim=0)  # K v for a null vector v
    assert float(residuals.max()) <= 1e-10 * float(top[0])


def test_a_spent_budget_says_so_and_runs_repeat() -> None:
    K = operator(TwoLayerNet(), sphere(1200, 10, seed=6))
    short = spectrum_of(K, 4, tolerance=1e-12, max_products=5)
    assert short.products == 5 and not short.converged
    again = spectrum_of(K, 4, tolerance=1e-12, max_products=5)
    torch.testing.assert_close(short.values, again.values, atol=0, rtol=0)


def test_orthonormal_combination_drops_dependent_directions() -> None:
    generator = torch.Generator().manual_seed(7)
    A = torch.randn(50, 4, generator=generator, dtype=F64)
    S = torch.cat([A, A[:, :2] @ torch.tensor([[1.0], [2.0]], dtype=F64), 1e6 * A[:, 3:]], dim=1)
    Q = S @ orthonormal_combination(S)
    assert Q.shape == (50, 4)
    torch.testing.assert_close(Q.T @ Q, torch.eye(4, dtype=F64), atol=1e-12, rtol=0)
