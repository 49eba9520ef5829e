"""Finite-width tangent kernels (workers.compute.kernels.empirical) against independent computations.

A researcher asks for the kernel of a net of m random neurons and expects: the closed forms of
two-layer and deep nets to equal the Gram matrix of their autograd Jacobians, for every activation,
trained layer and depth; the first-layer kernel to equal J J^T of the net written out by hand with
torch.func; and the kernel of m Gaussian neurons to scatter around the analytic H_inf with the
binomial standard error and to close in like m^-1/2. CPU, float64.
"""

import math

import pytest
import torch
from torch.func import jacrev

from schemas.networks import FullyConnected, NetworkSpec, TwoLayerNet
from workers.compute.kernels.analytic import relu_ntk_first_layer
from workers.compute.kernels.empirical import (
    autograd_kernel,
    fully_connected_empirical,
    two_layer_empirical,
    two_layer_kernel_sum,
)
from workers.compute.networks import init_params

from ..helpers import points, sphere

F64 = torch.float64
TWO_LAYER = [
    TwoLayerNet(activation=activation, trained=trained)
    for activation in ("relu", "quadratic")
    for trained in ("first", "second", "both")
] + [TwoLayerNet(activation="quadratic", trained="both", kappa=0.5), TwoLayerNet(trained="both", kappa=2.0)]
DEEP = [FullyConnected(depth=depth) for depth in (2, 3, 4)]

# ---------------------------------------------------------------------------------------------
# a) closed forms against autograd Jacobians
# ---------------------------------------------------------------------------------------------


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


# the same finite-width kernel from autograd: J J^T of f(x) = m^-1/2 sum_r a_r relu(w_r.x), the
# net written out here rather than through the service's autograd_kernel, on points off the sphere


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
# b) Monte Carlo: the finite-width kernel of m Gaussian neurons around the analytic one
# ---------------------------------------------------------------------------------------------


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
