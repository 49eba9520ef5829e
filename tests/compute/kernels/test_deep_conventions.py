"""Deep nets in stax's conventions (schemas/networks.py `FullyConnected`: W_std, b_std, trained).

A researcher asks for a depth-L ReLU net the way neural-tangents' stax writes it,
h^l = W_std_l / sqrt(fan-in) W^l x^{l-1} + b_std_l b^l, with one number or one value per layer,
and expects: a request that leaves them out to be today's net, number for number; the analytic
NTK and NNGP to be the recursion Sigma^l = W_std_l^2 kappa1(Sigma^{l-1}) + b_std_l^2,
Theta^l = Sigma^l + W_std_l^2 kappa0(Sigma^{l-1}) Theta^{l-1} written out plainly, by every route
the service computes kernels (assembled, by blocks, across two sets of points); the finite nets
to average to them (the empirical NTK over wide nets, the NNGP as the readout's covariance over
seeds), within a few Monte Carlo standard errors and far from the kernel of any other
convention; a kernel job to return the deep NNGP when only the readout is trained, and say so;
and a mis-sized or out-of-range W_std or b_std refused with the field and the reason.
CPU, float64.
"""

import math

import pytest
import torch
from pydantic import ValidationError

from schemas import JobRequest, KernelSpec, SphereDataset
from schemas.datasets import InlineDataset
from schemas.degeneracy import singular_kernel
from schemas.networks import FullyConnected, TwoLayerNet, parameter_count
from workers.compute import run_experiment
from workers.compute.kernels.analytic import KernelBlocks, analytic_kernel, cross_kernel, kernel_of
from workers.compute.kernels.empirical import autograd_kernel, fully_connected_empirical, tangent_kernel
from workers.compute.kernels.operator import BlockKernel
from workers.compute.networks import forward, init_params, trained_names

from ..helpers import points

F64 = torch.float64
SQRT2 = math.sqrt(2.0)

# A net of every kind of convention: a stax-like first layer, a per-layer list, biases everywhere.
STAX = FullyConnected(depth=3, W_std=[SQRT2, 1.3, 0.9], b_std=[0.3, 0.2, 0.5])


def with_fields(network: FullyConnected, **fields: object) -> FullyConnected:
    return FullyConnected.model_validate({**network.model_dump(), **fields})


def reference(X: torch.Tensor, W_std: list[float], b_std: list[float], last: bool = False) -> torch.Tensor:
    """The recursion as written (Lee et al. 2018; Arora et al. 2019; stax's Dense + Relu), on
    whole matrices: Sigma^1 = W_1^2 X X^T / d + b_1^2, Theta^1 = Sigma^1, then for each layer
    c = Sigma_ij / sqrt(Sigma_ii Sigma_jj) (1 on the diagonal, 0 where a variance is 0),
    Sigma <- W^2 sqrt(Sigma_ii Sigma_jj) (sin t + (pi - t) c) / (2 pi) + b^2,
    Theta <- Sigma + W^2 (pi - t) / (2 pi) Theta."""
    sigma = W_std[0] ** 2 * (X @ X.T) / X.shape[1] + b_std[0] ** 2
    theta = sigma.clone()
    for w, b in zip(W_std[1:], b_std[1:], strict=True):
        variances = sigma.diagonal()
        norm = (variances[:, None] * variances[None, :]).sqrt()
        c = torch.where(norm > 0, sigma / norm.clamp_min(1e-300), 0.0).clamp(-1.0, 1.0)
        c.fill_diagonal_(1.0)
        t = torch.arccos(c)
        sigma = w**2 * norm * (torch.sin(t) + (math.pi - t) * c) / (2 * math.pi) + b**2
        theta = sigma + w**2 * (math.pi - t) / (2 * math.pi) * theta
    return sigma if last else theta


# ---------------------------------------------------------------------------------------------
# a) the defaults are today's net, number for number
# ---------------------------------------------------------------------------------------------

# Computed by the code before W_std/b_std existed (points(n=6, d=5, seed=3); width 64, seed 7):
# analytic K[0,0], K[0,1], K[2,5]; finite f(x_0), f(x_4), H[0,1], H[3,3]. Written on an AMD EPYC;
# on an Intel Xeon the same code differs in the last bit or two (other BLAS kernels), so they are
# compared to a few ulps: any change of convention moves them by far more.
ULPS = 4e-15
BEFORE = {
    2: (
        ["0x1.502cee64df559p+0", "0x1.a24bd0d8dcb18p-1", "0x1.00faab9190c34p-5"],
        ["0x1.0ab10bbbecea4p-1", "-0x1.542e7278d6a94p-1", "0x1.49544fdf88ef9p-1", "0x1.2b52f86e42270p-2"],
    ),
    3: (
        ["0x1.f84365974f007p+0", "0x1.2249b67223f0dp+0", "0x1.62ebd2e7bcc0cp-3"],
        ["-0x1.6bb5c9ebfdf41p-1", "-0x1.9f7da67219edcp-2", "0x1.9613efbaa102bp+0", "0x1.00fc3c221f038p-1"],
    ),
    5: (
        ["0x1.a43829fe172afp+1", "0x1.ad40f92c93818p+0", "0x1.d3d7546e6a417p-2"],
        ["0x1.145f04058e37bp+0", "0x1.737973d99f471p-2", "0x1.ba643a98a56dap+0", "0x1.504b19e60c253p-1"],
    ),
}


@pytest.mark.parametrize("depth", sorted(BEFORE))
def test_the_default_net_gives_the_numbers_it_gave_before(depth: int) -> None:
    network, X = FullyConnected(depth=depth), points(n=6, d=5, seed=3)
    K = analytic_kernel(network, X)
    params = init_params(network, 5, 64, torch.Generator().manual_seed(7), F64)
    f, H = forward(network, params, X), tangent_kernel(network, params, X)
    analytic, finite = BEFORE[depth]
    got = [
        K[0, 0].item(),
        K[0, 1].item(),
        K[2, 5].item(),
        f[0].item(),
        f[4].item(),
        H[0, 1].item(),
        H[3, 3].item(),
    ]
    assert got == pytest.approx([float.fromhex(v) for v in analytic + finite], rel=ULPS, abs=0)
    assert sorted(params) == [f"W{layer}" for layer in range(1, depth + 1)]
    assert parameter_count(network, 5, 64) == sum(value.numel() for value in params.values())


def test_the_defaults_are_stax_w_std_sqrt_d_sqrt2_and_1_without_biases() -> None:
    d = 4  # sqrt(4) = 2 exactly, so only sqrt(2)^2 rounds
    X = points(n=7, d=d, seed=4)
    explicit = FullyConnected(depth=4, W_std=[2.0, SQRT2, SQRT2, 1.0], b_std=0.0)
    default = FullyConnected(depth=4)
    torch.testing.assert_close(analytic_kernel(explicit, X), analytic_kernel(default, X), atol=0, rtol=1e-14)
    torch.testing.assert_close(
        analytic_kernel(default, X), reference(X, [2.0, SQRT2, SQRT2, 1.0], [0.0] * 4), atol=0, rtol=1e-12
    )
    seed = torch.Generator().manual_seed(3)
    params = init_params(default, d, 128, seed, F64)
    torch.testing.assert_close(forward(explicit, params, X), forward(default, params, X), atol=0, rtol=1e-14)


def test_depth_two_is_the_two_layer_net() -> None:
    X = points(n=9, d=5, seed=5)
    for deep, shallow in [("all", "both"), ("last", "second")]:
        K = analytic_kernel(FullyConnected(depth=2, trained=deep), X)
        torch.testing.assert_close(K, analytic_kernel(TwoLayerNet(trained=shallow), X), atol=1e-14, rtol=0)


# ---------------------------------------------------------------------------------------------
# b) the analytic kernels are the recursion, by every route
# ---------------------------------------------------------------------------------------------

CASES = [
    STAX,
    with_fields(STAX, trained="last"),
    FullyConnected(depth=4, W_std=SQRT2, b_std=0.1),  # stax's common choice, one number for all
    FullyConnected(depth=3, W_std=[1.1, 1.7, 0.6]),  # no biases: the homogeneous route
    FullyConnected(depth=3, W_std=1.0, b_std=[0.0, 0.4, 0.0]),  # a bias after a bias-free layer
]


@pytest.mark.parametrize("network", CASES, ids=lambda net: net.describe())
def test_analytic_kernel_is_the_recursion_written_out(network: FullyConnected) -> None:
    X = points(n=12, d=5, seed=6)
    X[4] = 0.0  # a zero input: only the biases reach it
    W_std = network.W_std if isinstance(network.W_std, list) else [network.W_std] * network.depth
    expected = reference(X, W_std, network.bias_stds(), last=network.trained == "last")
    scale = float(expected.abs().max())
    K = analytic_kernel(network, X)
    torch.testing.assert_close(K, expected, atol=1e-12 * scale, rtol=0)
    # by blocks, never stored (the spectrum of a large dataset), and across two sets of points
    operator = BlockKernel(KernelBlocks(kernel_of(network, 5), X))
    V = torch.randn(12, 3, generator=torch.Generator().manual_seed(0), dtype=F64)
    torch.testing.assert_close(operator(V), expected @ V, atol=1e-12 * scale * 12, rtol=0)
    torch.testing.assert_close(operator.diagonal(), expected.diagonal(), atol=1e-12 * scale, rtol=0)
    torch.testing.assert_close(
        cross_kernel(kernel_of(network, 5), X[8:], X[:8]), expected[8:, :8], atol=1e-12 * scale, rtol=0
    )


def test_biases_enter_the_kernel_and_keep_it_homogeneous_only_without_them() -> None:
    X = points(n=6, d=5, seed=8)
    without = analytic_kernel(with_fields(STAX, b_std=0.0), X)
    torch.testing.assert_close(analytic_kernel(with_fields(STAX, b_std=1e-9), X), without, atol=1e-12, rtol=0)
    torch.testing.assert_close(analytic_kernel(with_fields(STAX, b_std=0.0), 3 * X), 9 * without)
    biased = analytic_kernel(STAX, X)
    assert not torch.allclose(analytic_kernel(STAX, 3 * X), 9 * biased)


# ---------------------------------------------------------------------------------------------
# c) the finite nets: parameters, their tangent kernel, and Monte Carlo against the limit
# ---------------------------------------------------------------------------------------------


def test_biases_are_parameters_drawn_after_the_weights() -> None:
    generator = torch.Generator().manual_seed(1)
    params = init_params(with_fields(STAX, b_std=[0.3, 0.0, 0.5]), 5, 16, generator, F64)
    assert {name: tuple(value.shape) for name, value in params.items()} == {
        "W1": (16, 5),
        "W2": (16, 16),
        "W3": (1, 16),
        "b1": (16,),
        "b3": (1,),
    }
    assert parameter_count(with_fields(STAX, b_std=[0.3, 0.0, 0.5]), 5, 16) == 80 + 256 + 16 + 16 + 1
    plain = init_params(FullyConnected(depth=3), 5, 16, torch.Generator().manual_seed(1), F64)
    assert all(torch.equal(params[name], plain[name]) for name in plain)  # same seed, same weights
    assert trained_names(with_fields(STAX, trained="last"), params) == ["W3", "b3"]


@pytest.mark.parametrize("network", CASES, ids=lambda net: net.describe())
def test_the_closed_form_finite_kernel_is_autograd(network: FullyConnected) -> None:
    X = points(n=7, d=5, seed=9)
    params = init_params(network, 5, 24, torch.Generator().manual_seed(2), F64)
    H = fully_connected_empirical(network, params, X)
    torch.testing.assert_close(H, autograd_kernel(network, params, X), atol=1e-12, rtol=1e-12)
    # replicates stacked as (R, ...) give each replicate's kernel
    other = init_params(network, 5, 24, torch.Generator().manual_seed(3), F64)
    stacked = {name: torch.stack([params[name], other[name]]) for name in params}
    torch.testing.assert_close(fully_connected_empirical(network, stacked, X)[0], H, atol=1e-12, rtol=0)
    torch.testing.assert_close(
        forward(network, stacked, X)[0], forward(network, params, X), atol=1e-13, rtol=0
    )


def entry_z(mean: torch.Tensor, standard_error: torch.Tensor, kernel: torch.Tensor) -> float:
    """The worst entry of the upper triangle, in standard errors from `kernel`."""
    rows, cols = torch.triu_indices(*kernel.shape)
    return float(((mean - kernel).abs() / standard_error)[rows, cols].max())


# Monte Carlo tolerances, standard errors estimated from the nets themselves: every entry of the
# upper triangle within Z_MAX standard errors of the analytic kernel (measured worst of 21: 1.5
# for the NTK, 0.6 for the last layer's kernel, 1.1 for the readout's covariance), a standard error
# below RESOLUTION of the kernel's largest entry (measured 0.8%, 0.7%, 2.3%), and the kernel of a
# net with one convention changed at least POWER standard errors away (b_std_2 0.2 -> 0, i.e.
# 0.04 less in Sigma^2: measured 25 and 18; for the readout, b_std_L 0.5 -> 0: 33).
Z_MAX, RESOLUTION, POWER = 5.0, 0.03, 10.0


def test_the_ntk_and_nngp_are_the_mean_of_wide_nets() -> None:
    """24 nets of width 2048 (~4 s): their empirical NTK (all layers) and their last layer's
    kernel W_std_L^2/m relu(h^{L-1}) relu(h^{L-1})^T + b_std_L^2, whose mean over the init is
    the readout's covariance E[f f^T]."""
    X, last = points(n=6, d=5, seed=21), with_fields(STAX, trained="last")
    kernels: dict[str, list[torch.Tensor]] = {"all": [], "last": []}
    for seed in range(24):
        params = init_params(STAX, 5, 2048, torch.Generator().manual_seed(1000 + seed), F64)
        kernels["all"].append(fully_connected_empirical(STAX, params, X))
        kernels["last"].append(fully_connected_empirical(last, params, X))
    for trained, network in [("all", STAX), ("last", last)]:
        stack = torch.stack(kernels[trained])
        mean, standard_error = stack.mean(0), stack.std(0) / len(stack) ** 0.5
        analytic = analytic_kernel(network, X)
        assert entry_z(mean, standard_error, analytic) < Z_MAX, trained
        assert float(standard_error.max() / analytic.abs().max()) < RESOLUTION
        other = analytic_kernel(with_fields(network, b_std=[0.3, 0.0, 0.5]), X)
        assert entry_z(mean, standard_error, other) > POWER, trained


def test_the_nngp_is_the_covariance_of_the_readout_over_seeds() -> None:
    """f(x) over 4000 nets of width 128 (~3 s; drawn one seed at a time, run 500 at a time as
    stacked replicates): E[f(x_i) f(x_j)] = Sigma^L_ij (the mean is 0)."""
    X, last = points(n=6, d=5, seed=21), with_fields(STAX, trained="last")
    outputs = []
    for first in range(0, 4000, 500):
        nets = [
            init_params(STAX, 5, 128, torch.Generator().manual_seed(50_000 + seed), F64)
            for seed in range(first, first + 500)
        ]
        outputs.append(forward(STAX, {name: torch.stack([net[name] for net in nets]) for name in nets[0]}, X))
    products = torch.cat(outputs)[:, :, None] * torch.cat(outputs)[:, None, :]
    mean, standard_error = products.mean(0), products.std(0) / len(products) ** 0.5
    nngp = analytic_kernel(last, X)
    assert entry_z(mean, standard_error, nngp) < Z_MAX
    assert float(standard_error.max() / nngp.abs().max()) < RESOLUTION
    no_readout_bias = analytic_kernel(with_fields(last, b_std=[0.3, 0.2, 0.0]), X)
    assert entry_z(mean, standard_error, no_readout_bias) > POWER


# ---------------------------------------------------------------------------------------------
# d) the kernel job and the contract
# ---------------------------------------------------------------------------------------------


def test_a_kernel_job_returns_the_deep_nngp_and_says_so() -> None:
    network = FullyConnected(depth=3, W_std=SQRT2, b_std=0.1, trained="last")
    result = run_experiment(KernelSpec(dataset=SphereDataset(n=24, d=5, seed=1), network=network))
    assert result.kernel.startswith("NNGP Sigma^L of the depth-3 ReLU net (W_std 1.41421, b_std 0.1)")
    # unit inputs: Sigma^1_ii = 2/5 + 0.01, then each layer halves and scales by 2, adding 0.01
    variance = 2 / 5 + 0.01
    for _ in range(2):
        variance = 2 * variance / 2 + 0.01
    assert result.spectrum.trace == pytest.approx(24 * variance, rel=1e-12)
    ntk = run_experiment(KernelSpec(dataset=SphereDataset(n=24, d=5, seed=1), network=FullyConnected()))
    assert ntk.kernel == "tangent kernel of the depth-3 ReLU net, every layer trained"


def errors(network: dict) -> list[tuple[tuple, str]]:
    with pytest.raises(ValidationError) as info:
        JobRequest.model_validate(
            {"spec": {"kind": "kernel", "network": {"name": "fully_connected", **network}}}
        )
    return [(tuple(error["loc"]), error["msg"]) for error in info.value.errors()]


NETWORK = ("spec", "kernel", "network", "fully_connected")


@pytest.mark.parametrize(
    ("network", "loc", "message"),
    [
        ({"depth": 3, "W_std": [1.0, 1.0]}, NETWORK, "W_std has 2 values: give one per layer (depth 3"),
        ({"depth": 2, "b_std": [0.1, 0.1, 0.1]}, NETWORK, "b_std has 3 values: give one per layer (depth 2"),
        ({"W_std": [1.0, 0.0, 1.0]}, (*NETWORK, "W_std", "per_layer", 1), "greater than 0"),
        ({"W_std": -1.0}, (*NETWORK, "W_std", "every_layer"), "greater than 0"),
        ({"b_std": [0.1, -0.1, 0.0]}, (*NETWORK, "b_std", "per_layer", 1), "greater than or equal to 0"),
        ({"b_std": "small"}, (*NETWORK, "b_std", "every_layer"), "a valid number"),
        ({"trained": "first"}, (*NETWORK, "trained"), "'all' or 'last'"),
    ],
)
def test_bad_conventions_are_refused_with_the_field_and_the_reason(
    network: dict, loc: tuple, message: str
) -> None:
    [(where, why)] = errors(network)  # one error, not one per branch of the union
    assert where == loc and message in why


def test_good_conventions_validate_and_round_trip() -> None:
    for network in [{"W_std": 1.5, "b_std": 0.05}, {"depth": 2, "W_std": [3, 1], "b_std": [0, 0.1]}]:
        spec = JobRequest.model_validate(
            {"spec": {"kind": "kernel", "network": {"name": "fully_connected", **network}}}
        ).spec
        assert JobRequest.model_validate({"spec": spec.model_dump(mode="json")}).spec == spec


def test_biases_make_rays_and_zero_inputs_harmless() -> None:
    dataset = InlineDataset(X=[[1.0, 0.0], [2.0, 0.0], [0.0, 0.0], [0.0, 1.0]], y=[1.0, -1.0, 1.0, 0.5])
    assert singular_kernel(dataset, FullyConnected()) is not None  # no biases: a zero row
    assert singular_kernel(dataset, FullyConnected(b_std=0.1)) is None
    H = analytic_kernel(FullyConnected(b_std=0.1), torch.tensor(dataset.X, dtype=F64))
    assert float(torch.linalg.eigvalsh(H)[0]) > 1e-6
