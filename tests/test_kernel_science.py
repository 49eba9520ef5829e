"""The first-layer NTK of the two-layer ReLU net (Du et al. 2019) against exact answers.

A researcher asks for the kernel of a dataset and expects: the closed form
H_inf_ij = x_i.x_j (pi - theta_ij) / (2 pi) on points whose angles are known by hand; the
finite-width kernel of m random neurons to scatter around it with the binomial standard error and
to close in like m^-1/2; the same finite-width kernel as autograd computes it; a spectrum that is
sorted and reconstructs the kernel; and a service result that is seeded, reproducible and honest.
CPU only, float64 unless a test says otherwise.
"""

import math

import pytest
import torch
from torch.func import jacrev

from schemas import InlineDataset, KernelSpec, SphereDataset
from schemas.networks import TwoLayerNet
from workers.compute import run_experiment
from workers.compute.datasets import make_data, uniform_sphere
from workers.compute.kernels.analytic import (
    relu_ntk_first_layer,
)
from workers.compute.kernels.empirical import two_layer_empirical, two_layer_kernel_sum
from workers.compute.spectrum import effective_rank, eigendecompose, label_energy

F64 = torch.float64
CPU = torch.device("cpu")

# ---------------------------------------------------------------------------------------------
# a) a hand-computed case
# ---------------------------------------------------------------------------------------------

SQRT3 = math.sqrt(3.0)
# Four directions in R^2 at angles 0, pi/3, pi/2 and pi from the x-axis: every pair has an angle
# with an exact cosine, and directions 0 and 3 are antiparallel.
DIRECTIONS = [(1.0, 0.0), (0.5, SQRT3 / 2), (0.0, 1.0), (-1.0, 0.0)]
# angle between direction i and j, and its cosine written exactly
ANGLES = {
    (0, 1): (math.pi / 3, 0.5),
    (0, 2): (math.pi / 2, 0.0),
    (0, 3): (math.pi, -1.0),
    (1, 2): (math.pi / 6, SQRT3 / 2),
    (1, 3): (2 * math.pi / 3, -0.5),
    (2, 3): (math.pi / 2, 0.0),
}


def hand_kernel(norms: list[float]) -> list[list[float]]:
    """H_ij = |x_i||x_j| cos(theta_ij) (pi - theta_ij) / (2 pi), from the table above."""
    n = len(norms)
    H = [[0.0] * n for _ in range(n)]
    for i in range(n):
        H[i][i] = norms[i] ** 2 * math.pi / (2 * math.pi)  # theta_ii = 0: |x_i|^2 / 2
    for (i, j), (theta, cosine) in ANGLES.items():
        H[i][j] = H[j][i] = norms[i] * norms[j] * cosine * (math.pi - theta) / (2 * math.pi)
    return H


def hand_points(norms: list[float]) -> list[list[float]]:
    return [[r * c for c in direction] for r, direction in zip(norms, DIRECTIONS, strict=True)]


UNIT = [1.0, 1.0, 1.0, 1.0]
SCALED = [2.0, 3.0, 0.5, 1.5]


@pytest.mark.parametrize("norms", [UNIT, SCALED], ids=["unit", "scaled"])
@pytest.mark.parametrize(("dtype", "tolerance"), [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_analytic_kernel_matches_hand_computed_entries(
    norms: list[float], dtype: torch.dtype, tolerance: float
) -> None:
    X = torch.tensor(hand_points(norms), dtype=dtype)
    H = relu_ntk_first_layer(X)
    expected = torch.tensor(hand_kernel(norms), dtype=F64)
    assert H.dtype == dtype and H.shape == (4, 4)
    torch.testing.assert_close(H.to(F64), expected, atol=tolerance * max(norms) ** 2, rtol=0)


def test_antiparallel_pair_gives_zero_and_norms_enter_through_the_inner_product() -> None:
    X = torch.tensor(hand_points(SCALED), dtype=F64)
    H = relu_ntk_first_layer(X)
    assert abs(float(H[0, 3])) <= 1e-12  # theta = pi: no neuron is active on both
    assert abs(float(H[0, 2])) <= 1e-12  # theta = pi/2: x_i.x_j = 0
    # x_0 = (2, 0), x_1 = 3 (1/2, sqrt3/2): x_0.x_1 = 3, theta = pi/3 -> 3 (2 pi/3) / (2 pi) = 1
    assert float(H[0, 1]) == pytest.approx(1.0, abs=1e-12)
    # the diagonal is |x_i|^2 / 2, and the kernel is symmetric
    torch.testing.assert_close(H.diagonal(), torch.tensor(SCALED, dtype=F64) ** 2 / 2, atol=1e-12, rtol=0)
    torch.testing.assert_close(H, H.T, atol=0, rtol=0)


# ---------------------------------------------------------------------------------------------
# b) Monte Carlo: the finite-width kernel of m Gaussian neurons around the analytic one
# ---------------------------------------------------------------------------------------------


def sphere(n: int, d: int, seed: int) -> torch.Tensor:
    return uniform_sphere(n, d, torch.Generator().manual_seed(seed))


def random_first_layer_kernel(X: torch.Tensor, m: int, seed: int) -> torch.Tensor:
    """H_m of m Gaussian neurons, as the service draws them (in blocks, seeded)."""
    return two_layer_empirical(TwoLayerNet(), X, m, torch.Generator().manual_seed(seed), lambda _done: None)


def test_empirical_kernel_is_within_six_standard_errors_of_the_analytic_one() -> None:
    m = 2**18
    X = sphere(16, 5, seed=1)
    H = relu_ntk_first_layer(X)
    H_m = random_first_layer_kernel(X, m, seed=2)
    # each entry of H_m is x_i.x_j times a mean of m Bernoulli(p) variables,
    # p = P(w.x_i >= 0, w.x_j >= 0) = (pi - theta_ij) / (2 pi), theta computed here independently
    G = X @ X.T
    unit = X / X.norm(dim=1, keepdim=True)
    theta = torch.acos((unit @ unit.T).clamp(-1, 1))
    theta.fill_diagonal_(0.0)
    p = (math.pi - theta) / (2 * math.pi)
    standard_error = G.abs() * torch.sqrt(p * (1 - p) / m)
    gap = (H_m - H).abs()
    worst = float((gap / (standard_error + 1e-300)).max())
    assert bool((gap <= 6 * standard_error + 1e-12).all()), f"worst entry is {worst:.1f} standard errors out"
    # and the scatter is really there: not everything sits within one standard error
    assert worst > 1.0


def relative_frobenius_error(X: torch.Tensor, m: int, seed: int) -> float:
    H = relu_ntk_first_layer(X)
    H_m = random_first_layer_kernel(X, m, seed)
    return float(torch.linalg.matrix_norm(H_m - H) / torch.linalg.matrix_norm(H))


def test_empirical_kernel_error_shrinks_like_inverse_square_root_of_width() -> None:
    X = sphere(16, 5, seed=3)

    def rms_error(m: int, seeds: range) -> float:
        """Root mean square over a few first layers, so one lucky draw cannot decide the test."""
        return math.sqrt(sum(relative_frobenius_error(X, m, seed) ** 2 for seed in seeds) / len(seeds))

    narrow, wide = rms_error(2**12, range(4, 8)), rms_error(2**16, range(14, 18))
    # 16 times the neurons: the error should fall by about sqrt(16) = 4
    assert 3.0 < narrow / wide < 5.3, (narrow, wide)  # 16x the width: 4x less error, exponent -0.40..-0.60


# ---------------------------------------------------------------------------------------------
# c) the same finite-width kernel from autograd: J J^T of f(x) = m^-1/2 sum_r a_r relu(w_r.x)
# ---------------------------------------------------------------------------------------------


def test_empirical_kernel_equals_autograd_jacobian_gram() -> None:
    n, d, m = 12, 4, 64
    generator = torch.Generator().manual_seed(6)
    X = torch.randn(n, d, generator=generator, dtype=F64)  # not unit norm on purpose
    W = torch.randn(m, d, generator=generator, dtype=F64)  # (m, d)
    a = torch.randint(0, 2, (m,), generator=generator).to(F64) * 2 - 1  # (m,) in {-1, +1}

    def net(weights: torch.Tensor) -> torch.Tensor:
        """f on every input: (m, d) -> (n,)."""
        return torch.relu(X @ weights.T) @ a / math.sqrt(m)

    # relu'(0) differs between conventions; Gaussian W makes an exact zero pre-activation
    # a probability-zero event, so check it is absent rather than assume it
    assert bool((X @ W.T != 0).all())
    J = jacrev(net)(W).reshape(n, m * d)  # (n, m d)
    torch.testing.assert_close(
        J @ J.T,
        two_layer_kernel_sum(TwoLayerNet(), X, W) / m,
        atol=1e-10,
        rtol=0,
    )


# ---------------------------------------------------------------------------------------------
# d) spectra
# ---------------------------------------------------------------------------------------------


def test_eigendecompose_sorts_largest_first_and_reconstructs_the_kernel() -> None:
    H = relu_ntk_first_layer(sphere(40, 6, seed=7))
    values, vectors = eigendecompose(H)
    assert values.shape == (40,) and vectors.shape == (40, 40)
    assert bool((values[:-1] >= values[1:]).all())
    torch.testing.assert_close(vectors @ torch.diag(values) @ vectors.T, H, atol=1e-10, rtol=0)
    torch.testing.assert_close(vectors.T @ vectors, torch.eye(40, dtype=F64), atol=1e-10, rtol=0)
    torch.testing.assert_close(H @ vectors, vectors * values, atol=1e-10, rtol=0)


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


# ---------------------------------------------------------------------------------------------
# e) the kernel experiment as the service runs it
# ---------------------------------------------------------------------------------------------


def kernel_spec(n: int = 64, d: int = 10, seed: int = 0, **fields: object) -> KernelSpec:
    return KernelSpec(dataset=SphereDataset(n=n, d=d, seed=seed), **fields)


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


def test_sphere_dataset_points_have_unit_norm() -> None:
    data = make_data(SphereDataset(n=64, d=10, seed=0), F64, CPU)
    assert data.X.shape == (64, 10) and data.y.shape == (64,)
    torch.testing.assert_close(data.X.norm(dim=1), torch.ones(64, dtype=F64), atol=1e-14, rtol=0)


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


# ---------------------------------------------------------------------------------------------
# f) devices
# ---------------------------------------------------------------------------------------------


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_spec_without_cuda_is_a_user_error() -> None:
    with pytest.raises(ValueError, match="cuda"):
        run_experiment(kernel_spec(device="cuda"))
