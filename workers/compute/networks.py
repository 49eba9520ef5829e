"""Finite networks built from a network spec: seeded initial parameters and the forward map,
as plain tensors and functions so that torch.func can differentiate them.

Parameters are a dict name -> tensor; `trained_names` says which of them the tangent kernel
(and training) differentiates.
"""

import math
from collections.abc import Callable

import torch

from schemas.networks import FullyConnected, NetworkSpec, TwoLayerNet

Params = dict[str, torch.Tensor]

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": torch.relu,
    "quadratic": torch.square,
    "tanh": torch.tanh,
}
OUTPUT_SCALE = {"ntk": lambda m: m**-0.5, "standard": lambda m: 1.0, "mean_field": lambda m: 1.0 / m}
SIGN_SCALE = {"ntk": lambda m: 1.0, "standard": lambda m: m**-0.5, "mean_field": lambda m: 1.0}


def init_two_layer(
    spec: TwoLayerNet, d: int, m: int, generator: torch.Generator, dtype: torch.dtype
) -> Params:
    """W: (m, d) ~ N(0, kappa^2), a: (m,) uniform in {-c_m, +c_m} (c_m of the parameterization)."""
    device = generator.device
    W = spec.kappa * torch.randn(m, d, generator=generator, dtype=dtype, device=device)
    signs = torch.randint(0, 2, (m,), generator=generator, device=device).to(dtype) * 2 - 1
    a = SIGN_SCALE[spec.parameterization](m) * signs
    return {"W": W, "a": a}


def forward_two_layer(spec: TwoLayerNet, params: Params, X: torch.Tensor) -> torch.Tensor:
    """f(x) = s_m sum_r a_r sigma(w_r . x), s_m of the parameterization.
    X: (n, d) or (R, n, d), W: (m, d) or (R, m, d), a: (m,) or (R, m) -> (n,) or (R, n)."""
    W, a = params["W"], params["a"]
    hidden = ACTIVATIONS[spec.activation](X @ W.mT)
    return (hidden @ a[..., None])[..., 0] * OUTPUT_SCALE[spec.parameterization](W.shape[-2])


def init_fully_connected(
    spec: FullyConnected, d: int, m: int, generator: torch.Generator, dtype: torch.dtype
) -> Params:
    """W1: (m, d), W2..W{L-1}: (m, m), W{L}: (1, m), all N(0, 1)."""
    shapes = [(m, d)] + [(m, m)] * (spec.depth - 2) + [(1, m)]
    return {
        f"W{layer}": torch.randn(*shape, generator=generator, dtype=dtype, device=generator.device)
        for layer, shape in enumerate(shapes, start=1)
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


def init_params(spec: NetworkSpec, d: int, m: int, generator: torch.Generator, dtype: torch.dtype) -> Params:
    """Seeded initial parameters of width m on the generator's device."""
    return INIT[spec.name](spec, d, m, generator, dtype)


def forward(spec: NetworkSpec, params: Params, X: torch.Tensor) -> torch.Tensor:
    return FORWARD[spec.name](spec, params, X)


def trained_names(spec: NetworkSpec, params: Params) -> list[str]:
    """The parameters the tangent kernel differentiates."""
    if isinstance(spec, TwoLayerNet):
        return {"first": ["W"], "second": ["a"], "both": ["W", "a"]}[spec.trained]
    return list(params)
