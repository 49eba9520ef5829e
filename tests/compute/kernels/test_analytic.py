"""Analytic tangent kernels (workers.compute.kernels.analytic) against exact answers.

A researcher asks for the infinite-width kernel of a net and expects: the first-layer ReLU NTK
H_inf_ij = x_i.x_j (pi - theta_ij) / (2 pi) of Du et al. (2019) on points whose angles are known by
hand, in every precision; the depth-2 deep kernel to be the two-layer net with both layers trained;
every closed form to be the mean of the kernels of many random finite nets, within a few standard
errors; and the standard and mean-field parameterizations to scale the kernel with the width.
CPU, float64 unless a test says otherwise.
"""

import pytest
import torch

from schemas.networks import FullyConnected, NetworkSpec, TwoLayerNet
from workers.compute.kernels.analytic import (
    analytic_kernel,
    cross_kernel,
    kernel_of,
    relu_nngp,
    relu_ntk_first_layer,
)
from workers.compute.kernels.empirical import autograd_kernel, fully_connected_empirical, two_layer_empirical
from workers.compute.networks import init_params

from ..helpers import points
from ..precision import Precision
from .helpers import SCALED, UNIT, hand_kernel, hand_points

F64 = torch.float64

# ---------------------------------------------------------------------------------------------
# a) a hand-computed case
# ---------------------------------------------------------------------------------------------

# this test's own bounds, tighter than the precision fixture's defaults
HAND_TOLERANCE = {torch.float64: 1e-12, torch.float32: 1e-5}


@pytest.mark.parametrize("norms", [UNIT, SCALED], ids=["unit", "scaled"])
def test_analytic_kernel_matches_hand_computed_entries(norms: list[float], precision: Precision) -> None:
    tolerance = HAND_TOLERANCE[precision.dtype]
    X = torch.tensor(hand_points(norms), dtype=precision.dtype, device=precision.device)
    H = relu_ntk_first_layer(X)
    expected = torch.tensor(hand_kernel(norms), dtype=F64, device=precision.device)
    assert H.dtype == precision.dtype and H.shape == (4, 4)
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


def test_depth_two_is_the_two_layer_net_with_both_layers_trained() -> None:
    X = points()
    both = analytic_kernel(TwoLayerNet(trained="both"), X)
    torch.testing.assert_close(analytic_kernel(FullyConnected(depth=2), X), both, atol=1e-14, rtol=0)
    torch.testing.assert_close(both, relu_ntk_first_layer(X) + relu_nngp(X), atol=1e-14, rtol=0)


# ---------------------------------------------------------------------------------------------
# b) Monte Carlo: the analytic kernel is the mean of the kernels of random networks
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# c) other parameterizations
# ---------------------------------------------------------------------------------------------


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


@pytest.mark.parametrize(
    "network",
    [TwoLayerNet(trained="both"), TwoLayerNet(activation="quadratic"), FullyConnected(depth=4)],
    ids=lambda net: net.describe(),
)
def test_the_cross_kernel_is_the_joint_kernels_block(network: NetworkSpec) -> None:
    X, X_test = points(n=30, d=5, seed=11), points(n=7, d=5, seed=12)
    X_test[0] = 2.0 * X[3]  # a test point parallel to a training point: its cosine rounds near 1
    joint = analytic_kernel(network, torch.cat([X, X_test]))
    cross = cross_kernel(kernel_of(network, 5), X_test, X)
    torch.testing.assert_close(cross, joint[30:, :30], atol=1e-7 * float(joint.abs().max()), rtol=0)
    torch.testing.assert_close(cross[1:], joint[31:, :30], atol=1e-13 * float(joint.abs().max()), rtol=0)
