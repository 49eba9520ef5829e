"""Finite networks built from a network spec: seeded initial parameters and the forward map,
as plain tensors and functions so that torch.func can differentiate them.

Parameters are a dict name -> tensor; `trained_names` says which of them the tangent kernel
(and training) differentiates. Like the data (`datasets`), initial parameters are drawn in
float64 from a CPU generator and then moved and cast, so a seed gives the same network on every
device and, up to rounding, in every dtype.
"""

import math
from collections.abc import Callable

import torch

from schemas.networks import FullyConnected, NetworkSpec, TwoLayerNet

Params = dict[str, torch.Tensor]
F64 = torch.float64
CPU = torch.device("cpu")

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": torch.relu,
    "quadratic": torch.square,
    "tanh": torch.tanh,
}
OUTPUT_SCALE = {"ntk": lambda m: m**-0.5, "standard": lambda m: 1.0, "mean_field": lambda m: 1.0 / m}
SIGN_SCALE = {"ntk": lambda m: 1.0, "standard": lambda m: m**-0.5, "mean_field": lambda m: 1.0}


def normal(
    shape: tuple[int, ...], generator: torch.Generator, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """N(0, 1) entries drawn in float64 from the CPU `generator`, then cast and moved."""
    return torch.randn(shape, generator=generator, dtype=F64).to(device=device, dtype=dtype)


def init_two_layer(
    spec: TwoLayerNet, d: int, m: int, generator: torch.Generator, dtype: torch.dtype, device: torch.device
) -> Params:
    """W: (m, d) ~ N(0, kappa^2), a: (m,) uniform in {-c_m, +c_m} (c_m of the parameterization)."""
    W = spec.kappa * normal((m, d), generator, dtype, device)
    signs = torch.randint(0, 2, (m,), generator=generator).to(device=device, dtype=dtype) * 2 - 1
    a = SIGN_SCALE[spec.parameterization](m) * signs
    return {"W": W, "a": a}


def forward_two_layer(spec: TwoLayerNet, params: Params, X: torch.Tensor) -> torch.Tensor:
    """f(x) = s_m sum_r a_r sigma(w_r . x), s_m of the parameterization.
    X: (n, d) or (R, n, d), W: (m, d) or (R, m, d), a: (m,) or (R, m) -> (n,) or (R, n).
    Computed as (s_m a)^T sigma(W X^T): with X shared, W X^T is one matrix product whatever R is
    (the stack folds into its rows), and the scale multiplies m numbers, not n (measured in
    bench/train.py: fewer and cheaper kernels than sigma(X W^T) a, whose broadcast runs batched)."""
    W, a = params["W"], params["a"]
    hidden = ACTIVATIONS[spec.activation](W @ X.mT)  # (m, n) or (R, m, n)
    scaled = a[..., None, :] * OUTPUT_SCALE[spec.parameterization](W.shape[-2])
    return (scaled @ hidden).squeeze(-2)  # a squeeze's backward is a view, a select's a copy


def init_fully_connected(
    spec: FullyConnected, d: int, m: int, generator: torch.Generator, dtype: torch.dtype, device: torch.device
) -> Params:
    """W1: (m, d), W2..W{L-1}: (m, m), W{L}: (1, m), all N(0, 1)."""
    shapes = [(m, d)] + [(m, m)] * (spec.depth - 2) + [(1, m)]
    return {
        f"W{layer}": normal(shape, generator, dtype, device) for layer, shape in enumerate(shapes, start=1)
    }


def forward_fully_connected(spec: FullyConnected, params: Params, X: torch.Tensor) -> torch.Tensor:
    """h^1 = W^1 x, h^l = sqrt(2/m) W^l relu(h^{l-1}), f = m^-1/2 W^L relu(h^{L-1}).
    X: (n, d) -> (n,); with every W^l stacked as (R, ...) for R replicates, -> (R, n)."""
    h = X @ params["W1"].mT
    for layer in range(2, spec.depth + 1):
        W = params[f"W{layer}"]
        scale = 1.0 if layer == spec.depth else 2.0
        h = torch.relu(h) @ W.mT * math.sqrt(scale / W.shape[-1])
    return h[..., 0]


INIT: dict[str, Callable[..., Params]] = {
    "two_layer": init_two_layer,
    "fully_connected": init_fully_connected,
}
FORWARD: dict[str, Callable[..., torch.Tensor]] = {
    "two_layer": forward_two_layer,
    "fully_connected": forward_fully_connected,
}


def init_params(
    spec: NetworkSpec,
    d: int,
    m: int,
    generator: torch.Generator,
    dtype: torch.dtype,
    device: torch.device = CPU,
) -> Params:
    """Seeded initial parameters of width m, drawn from the CPU `generator`, on `device`."""
    return INIT[spec.name](spec, d, m, generator, dtype, device)


def forward(spec: NetworkSpec, params: Params, X: torch.Tensor) -> torch.Tensor:
    return FORWARD[spec.name](spec, params, X)


def trained_names(spec: NetworkSpec, params: Params) -> list[str]:
    """The parameters the tangent kernel differentiates."""
    if isinstance(spec, TwoLayerNet):
        return {"first": ["W"], "second": ["a"], "both": ["W", "a"]}[spec.trained]
    return list(params)
