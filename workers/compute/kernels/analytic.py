"""Analytic (infinite-width) tangent and Gaussian-process kernels.

Conventions match neural-tangents' `stax` in NTK parameterization with b_std=None: for the
two-layer net, Dense(m, W_std=sqrt(d)) -> act -> Dense(1, W_std=1); for depth L,
Dense(m, W_std=sqrt(d)) -> Relu -> [Dense(m, W_std=sqrt(2)) -> Relu] x (L-2) -> Dense(1, W_std=1).
With these, stax's `nngp` is our NNGP and its `ntk` our NTK with every layer trained; for the
two-layer ReLU net `ntk - nngp` is the first-layer Gram H_inf of Du et al. (2019).

All maps take X: (n, d) or a covariance (n, n) and return (n, n).
"""

import math
from collections.abc import Callable

import torch

from schemas.networks import FullyConnected, NetworkSpec, TwoLayerNet

BLOCK_ROWS = 64
"""Rows per block of the arc-cosine maps: a 64 x n block of float64 temporaries stays in cache;
measured fastest among 32..512 at n = 4000 (bench/ntk.py)."""


Rows = Callable[[int, int], torch.Tensor]
"""`rows(start, stop)`: the block S[start:stop, start:] of a symmetric (n, n) covariance S."""


def stored(S: torch.Tensor) -> Rows:
    """The row blocks of a covariance held in memory."""
    return lambda start, stop: S[start:stop, start:]


def gram(X: torch.Tensor) -> Rows:
    """The row blocks of S = X X^T, each computed when asked: the upper triangle only, half the
    flops of X @ X.T, and a block still in cache when it is used (bench/ntk.py)."""
    return lambda start, stop: X[start:stop] @ X[start:].T


def arccos_blocks(
    rows: Rows, diagonal: torch.Tensor, entries: Callable[..., tuple[torch.Tensor, ...]], count: int
) -> tuple[torch.Tensor, ...]:
    """`count` symmetric matrices, each entry a function of the angle between i and j under
    the covariance S (n, n) whose row blocks `rows` gives and whose diagonal is `diagonal`:
    cos t_ij = S_ij / sqrt(S_ii S_jj), clipped to [-1, 1] and exactly 1 on the diagonal, so
    rounding cannot leave arccos's domain.

    Only the upper triangle is computed, BLOCK_ROWS rows at a time (cache-sized temporaries),
    and mirrored. `entries(S_block, cosine, theta, norms_rows, norms_cols)` returns the blocks."""
    n = diagonal.shape[0]
    norms = diagonal.clamp_min(torch.finfo(diagonal.dtype).tiny).sqrt()
    out = tuple(torch.empty(n, n, dtype=diagonal.dtype, device=diagonal.device) for _ in range(count))
    for start in range(0, n, BLOCK_ROWS):
        stop = min(start + BLOCK_ROWS, n)
        block = rows(start, stop)
        cosine = block / norms[start:stop, None]
        cosine.div_(norms[None, start:]).clamp_(-1.0, 1.0)
        cosine[:, : stop - start].fill_diagonal_(1.0)
        theta = torch.arccos(cosine)
        for matrix, values in zip(
            out, entries(block, cosine, theta, norms[start:stop], norms[start:]), strict=True
        ):
            matrix[start:stop, start:] = values
            matrix[start:, start:stop] = values.T
    return out


def _kappas(
    _block: torch.Tensor, cosine: torch.Tensor, theta: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    kappa0 = (math.pi - theta) / (2 * math.pi)
    kappa1 = rows[:, None] * cols[None, :] * (torch.sin(theta) + (math.pi - theta) * cosine) / (2 * math.pi)
    return kappa1, kappa0


def arccos_maps(S: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The ReLU arc-cosine maps of a covariance S (Cho & Saul 2009), for (u, v) ~ N(0, S_[ij]):

    kappa1_ij = E[relu(u) relu(v)]  = sqrt(S_ii S_jj) (sin t + (pi - t) cos t) / (2 pi),
    kappa0_ij = E[1{u>0} 1{v>0}]    = (pi - t) / (2 pi),   cos t = S_ij / sqrt(S_ii S_jj).
    Use float64 for spectra: arccos is ill-conditioned near t = 0."""
    kappa1, kappa0 = arccos_blocks(stored(S), S.diagonal(), _kappas, 2)
    return kappa1, kappa0


def _first_layer(
    block: torch.Tensor, _cosine: torch.Tensor, theta: torch.Tensor, _rows: torch.Tensor, _cols: torch.Tensor
) -> tuple[torch.Tensor]:
    return (theta.neg_().add_(math.pi).mul_(block).div_(2 * math.pi),)


def relu_ntk_first_layer(X: torch.Tensor) -> torch.Tensor:
    """H_inf_ij = x_i.x_j (pi - theta_ij) / (2 pi) = x_i.x_j kappa0_ij (Du et al. 2019, the Gram
    matrix H^infty; on the unit sphere x_i.x_j = cos theta_ij). stax: ntk - nngp."""
    return arccos_blocks(gram(X), (X * X).sum(dim=1), _first_layer, 1)[0]


def relu_nngp(X: torch.Tensor) -> torch.Tensor:
    """Second-layer kernel (NNGP) of the two-layer ReLU net: E_w[relu(w.x_i) relu(w.x_j)] =
    |x_i||x_j| (sin t + (pi - t) cos t) / (2 pi). stax: nngp."""
    return arccos_blocks(gram(X), (X * X).sum(dim=1), _kappas, 2)[0]


def quadratic_ntk_first_layer(X: torch.Tensor) -> torch.Tensor:
    """sigma(t) = t^2, sigma'(t) = 2t: x_i.x_j E[4 (w.x_i)(w.x_j)] = 4 (x_i.x_j)^2."""
    G = X @ X.T
    return 4 * G**2


def quadratic_nngp(X: torch.Tensor) -> torch.Tensor:
    """E[(w.x_i)^2 (w.x_j)^2] = |x_i|^2 |x_j|^2 + 2 (x_i.x_j)^2 (Isserlis' theorem)."""
    G = X @ X.T
    squared = G.diagonal()
    return squared[:, None] * squared[None, :] + 2 * G**2


TWO_LAYER = {
    ("relu", "first"): relu_ntk_first_layer,
    ("relu", "second"): relu_nngp,
    ("quadratic", "first"): quadratic_ntk_first_layer,
    ("quadratic", "second"): quadratic_nngp,
}


DEGREE = {"relu": 1, "quadratic": 2}
"""sigma(kappa t) = kappa^deg sigma(t), so with w ~ N(0, kappa^2 I) the first-layer kernel
(through sigma') scales by kappa^(2 deg - 2) and the second-layer one by kappa^(2 deg)."""


def two_layer_kernel(spec: TwoLayerNet, X: torch.Tensor, width: int | None = None) -> torch.Tensor:
    """The tangent kernel of the layers `spec.trained` covers (`both`: the sum of the two). In
    the standard and mean-field parameterizations it depends on the width m (layer_scales)."""
    if not spec.analytic:
        raise ValueError(f"the two-layer {spec.activation} net has no closed-form kernel")
    if spec.parameterization != "ntk" and width is None:
        raise ValueError(f"the {spec.parameterization} parameterization's kernel depends on the width")
    first, second = spec.layer_scales(width) if width is not None else (1.0, 1.0)
    degree = DEGREE[spec.activation]
    scales = {"first": first * spec.kappa ** (2 * degree - 2), "second": second * spec.kappa ** (2 * degree)}
    layers = ("first", "second") if spec.trained == "both" else (spec.trained,)
    return sum(scales[layer] * TWO_LAYER[spec.activation, layer](X) for layer in layers)


def deep_relu_kernels(X: torch.Tensor, depth: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(NNGP, NTK) of the depth-L ReLU net of FullyConnected (Jacot et al. 2018; Arora et al.
    2019), every layer trained:

    Sigma^1 = Theta^1 = X X^T;  for l = 2..L with c_l = 2 (hidden) or 1 (output layer):
    Sigma^l = c_l kappa1(Sigma^{l-1}),  Theta^l = Sigma^l + c_l kappa0(Sigma^{l-1}) * Theta^{l-1}.
    Depth 2 gives relu_nngp + relu_ntk_first_layer."""
    sigma = X @ X.T
    theta = sigma
    for layer in range(2, depth + 1):
        scale = 1.0 if layer == depth else 2.0
        kappa1, kappa0 = arccos_maps(sigma)
        sigma = scale * kappa1
        theta = sigma + scale * kappa0 * theta
    return sigma, theta


def fully_connected_kernel(spec: FullyConnected, X: torch.Tensor, _width: int | None = None) -> torch.Tensor:
    return deep_relu_kernels(X, spec.depth)[1]


ANALYTIC: dict[str, Callable[..., torch.Tensor]] = {
    "two_layer": two_layer_kernel,
    "fully_connected": fully_connected_kernel,
}


def analytic_kernel(spec: NetworkSpec, X: torch.Tensor, width: int | None = None) -> torch.Tensor:
    """The infinite-width tangent kernel of a network spec on inputs X (scaled to `width` where
    the parameterization makes it width-dependent)."""
    return ANALYTIC[spec.name](spec, X, width)
