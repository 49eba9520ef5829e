"""Finite-width tangent kernels H_ij = <df(x_i)/dtheta, df(x_j)/dtheta> over the trained
parameters: closed forms without autograd, and the generic torch.func path for any network."""

from collections.abc import Callable, Iterator

import torch
from torch.func import jacrev, vmap

from schemas.costs import EMPIRICAL_CHUNK
from schemas.networks import FullyConnected, NetworkSpec, TwoLayerNet
from workers.compute.networks import (
    ACTIVATIONS,
    OUTPUT_SCALE,
    Params,
    dense,
    dense_gains,
    forward,
    normal,
    trained_names,
)

DERIVATIVES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": lambda p: (p >= 0).to(torch.float32),  # 0/1: S S^T counts are exact in float32 below 2^24
    "quadratic": lambda p: 2 * p,
    "tanh": lambda p: 1 - torch.tanh(p) ** 2,
}


def two_layer_kernel_sum(
    spec: TwoLayerNet, X: torch.Tensor, W: torch.Tensor, a: torch.Tensor | None = None
) -> torch.Tensor:
    """sum_r of the per-neuron tangent kernels of f = sum_r a_r sigma(w_r.x), without the
    output scale s_m (H = s_m^2 times this):

    first layer:  (X X^T) * ((sigma'(X W^T) a) (sigma'(X W^T) a)^T)   (neuron-wise product by a)
    second layer: sigma(X W^T) sigma(X W^T)^T
    a = None means a_r^2 = 1 (signs, as at init in the NTK parameterization; Du et al. 2019):
    ReLU patterns are then 0/1 and their Gram is taken in float32 (exact counts for m < 2^24,
    2-4x faster than float64). Additive over neurons, so blocks of W can be summed.
    X: (n, d), W: (m, d), a: (m,) -> (n, n); with W: (R, m, d) and a: (R, m) for R stacked
    replicates (X possibly (R, n, d)) -> (R, n, n)."""
    return two_layer_cross_sum(spec, X, X, W, a)


def two_layer_cross_sum(
    spec: TwoLayerNet, Y: torch.Tensor, X: torch.Tensor, W: torch.Tensor, a: torch.Tensor | None = None
) -> torch.Tensor:
    """two_layer_kernel_sum's entries between the points Y (t, d) and X (n, d): (t, n), rows of
    the kernel when Y is a block of X's rows; Y the same tensor as X: the kernel, each feature
    computed once."""
    P = X @ W.mT
    P_rows = P if Y is X else Y @ W.mT
    terms = []
    if spec.trained in ("first", "both"):
        S_rows, S = rows_and_all(DERIVATIVES[spec.activation], P_rows, P)
        if a is not None:
            S_rows, S = rows_and_all(lambda T: T.to(X.dtype) * a[..., None, :], S_rows, S)
        terms.append((Y @ X.mT) * (S_rows @ S.mT).to(X.dtype))
    if spec.trained in ("second", "both"):
        A_rows, A = rows_and_all(ACTIVATIONS[spec.activation], P_rows, P)
        terms.append(A_rows @ A.mT)
    return sum(terms[1:], terms[0])


def rows_and_all(
    f: Callable[[torch.Tensor], torch.Tensor], rows: torch.Tensor, whole: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(f(rows), f(whole)), computed once when they are the same tensor."""
    at_whole = f(whole)
    return (at_whole, at_whole) if rows is whole else (f(rows), at_whole)


def two_layer_empirical(
    spec: TwoLayerNet, X: torch.Tensor, m: int, generator: torch.Generator, on_block: Callable[[int], None]
) -> torch.Tensor:
    """H_m of m neurons w_r ~ N(0, kappa^2 I_d) drawn in blocks of EMPIRICAL_CHUNK: memory O(n^2 + n
    EMPIRICAL_CHUNK) whatever m is; `on_block(done)` runs after each block."""
    total = torch.zeros(X.shape[0], X.shape[0], dtype=X.dtype, device=X.device)
    for done, W in neuron_blocks(spec, X, m, generator):
        total += two_layer_kernel_sum(spec, X, W)
        on_block(done)
    return total / m


def neuron_blocks(
    spec: TwoLayerNet, X: torch.Tensor, m: int, generator: torch.Generator
) -> Iterator[tuple[int, torch.Tensor]]:
    """The m first-layer rows w_r ~ N(0, kappa^2 I_d) of a random two-layer net, drawn in blocks
    of EMPIRICAL_CHUNK: (neurons drawn so far, the block), in X's dtype and device."""
    for done in range(0, m, EMPIRICAL_CHUNK):
        block = min(EMPIRICAL_CHUNK, m - done)
        yield done + block, spec.kappa * normal((block, X.shape[1]), generator, X.dtype, X.device)


def two_layer_kernel_at(spec: TwoLayerNet, params: Params, X: torch.Tensor) -> torch.Tensor:
    """The exact tangent kernel of the two-layer net at its current parameters (any
    parameterization, trained second layer included): s_m^2 two_layer_kernel_sum(W, a)."""
    W, a = params["W"], params["a"]
    return OUTPUT_SCALE[spec.parameterization](W.shape[-2]) ** 2 * two_layer_kernel_sum(spec, X, W, a)


def fully_connected_empirical(spec: FullyConnected, params: Params, X: torch.Tensor) -> torch.Tensor:
    """H = sum over trained layers l of (delta^l delta^l^T) * (s_l^2 alpha^{l-1} alpha^{l-1}^T + b_l^2):
    a dense layer h^l = s_l W^l alpha^{l-1} + b_l b^l has df/dW^l = delta^l (s_l alpha^{l-1})^T and
    df/db^l = b_l delta^l with delta^l = df/dh^l, so its kernel is a product of two Gram matrices
    (backpropagation by hand, no autograd). alpha^0 = X, s_l = W_std_l / sqrt(fan-in), b_l =
    b_std_l (0: no bias); delta^L = 1, delta^{l-1} = s_l (delta^l W^l) * relu'(h^{l-1}). Trained
    layers: all, or the readout alone (`trained: last`, the finite NNGP). X: (n, d) -> (n, n); with
    every parameter stacked as (R, ...) for R replicates -> (R, n, n)."""
    depth = spec.depth
    gains = dense_gains(spec, params)
    lowest = depth if spec.trained == "last" else 1
    inputs, pre = [X], []  # alpha^{l-1} and h^l for l = 1..L
    for layer in range(1, depth + 1):
        h = dense(params, layer, gains[layer - 1], inputs[-1])
        pre.append(h)
        if layer < depth:
            inputs.append(torch.relu(h))
    delta = torch.ones(*X.shape[:-1], 1, dtype=X.dtype, device=X.device)
    terms = []
    for layer in range(depth, lowest - 1, -1):
        scale, std = gains[layer - 1]
        gram = scale**2 * (inputs[layer - 1] @ inputs[layer - 1].mT)
        terms.append((delta @ delta.mT) * (gram + std**2 if std > 0 else gram))
        if layer > lowest:
            weights = params[f"W{layer}"]
            delta = (delta @ weights) * scale * (pre[layer - 2] >= 0).to(X.dtype)
    return sum(terms[1:], terms[0])


def tangent_kernel(spec: NetworkSpec, params: Params, X: torch.Tensor) -> torch.Tensor:
    """The finite-width tangent kernel at `params` by the closed form of the network's kind:
    memory O(n^2 + n m), never the n x p Jacobian."""
    if isinstance(spec, TwoLayerNet):
        return two_layer_kernel_at(spec, params, X)
    return fully_connected_empirical(spec, params, X)


def autograd_kernel(spec: NetworkSpec, params: Params, X: torch.Tensor) -> torch.Tensor:
    """The generic path for any network: per-input Jacobians J (n, p) of f with respect to the
    trained parameters by torch.func (vmap of jacrev), then J J^T. Memory O(n p)."""
    names = trained_names(spec, params)
    trained = {name: params[name] for name in names}
    frozen = {name: value for name, value in params.items() if name not in trained}

    def f(theta: Params, x: torch.Tensor) -> torch.Tensor:
        return forward(spec, {**frozen, **theta}, x[None])[0]

    jacobians = vmap(jacrev(f), in_dims=(None, 0))(trained, X)
    J = torch.cat([jacobians[name].reshape(X.shape[0], -1) for name in names], dim=1)
    return J @ J.T
