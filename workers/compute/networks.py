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
from schemas.weights import parameter_shapes

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
    """Every parameter of `parameter_shapes`, N(0, 1), in its order: W1: (m, d), W2..W{L-1}:
    (m, m), W{L}: (1, m), then b{l}: (m,) ((1,) for the readout) for each layer with b_std_l > 0.
    The weights are drawn first, so a seed gives the same weights with or without biases."""
    return {
        name: normal(shape, generator, dtype, device) for name, shape in parameter_shapes(spec, d, m).items()
    }


def dense_gains(spec: FullyConnected, params: Params) -> list[tuple[float, float]]:
    """(W_std_l / sqrt(fan-in), b_std_l) of each layer l = 1..L: h^l = gain W^l x^{l-1} + b_std b^l.
    The fan-in is read from W^l, so stacked (R, ...) parameters work alike. With the default
    W_std the first gain is exactly 1 and the others sqrt(2/m), sqrt(1/m)."""
    variances = spec.weight_variances(params["W1"].shape[-1])
    return [
        (math.sqrt(variance / params[f"W{layer}"].shape[-1]), std)
        for layer, (variance, std) in enumerate(zip(variances, spec.bias_stds(), strict=True), start=1)
    ]


def dense(params: Params, layer: int, gains: tuple[float, float], x: torch.Tensor) -> torch.Tensor:
    """h^l = gain x W^l^T + b_std b^l: x (..., n, fan-in) -> (..., n, fan-out), the bias (fan-out,)
    or stacked (R, fan-out) broadcast over the n points."""
    gain, std = gains
    h = x @ params[f"W{layer}"].mT
    h = h * gain if gain != 1.0 else h
    return h + std * params[f"b{layer}"].unsqueeze(-2) if std > 0 else h


def forward_fully_connected(spec: FullyConnected, params: Params, X: torch.Tensor) -> torch.Tensor:
    """h^l = W_std_l / sqrt(fan-in) W^l x^{l-1} + b_std_l b^l, x^0 = x, x^l = relu(h^l), f = h^L;
    by default h^1 = W^1 x, h^l = sqrt(2/m) W^l relu(h^{l-1}), f = m^-1/2 W^L relu(h^{L-1}).
    X: (n, d) -> (n,); with every parameter stacked as (R, ...) for R replicates, -> (R, n)."""
    gains = dense_gains(spec, params)
    h = dense(params, 1, gains[0], X)
    for layer in range(2, spec.depth + 1):
        h = dense(params, layer, gains[layer - 1], torch.relu(h))
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
    if spec.trained == "last":
        return [name for name in (f"W{spec.depth}", f"b{spec.depth}") if name in params]
    return list(params)
