"""Neural tangent kernels of the two-layer ReLU net of Du et al. (2019).

f(x) = m^-1/2 sum_r a_r relu(w_r . x), a_r in {-1, +1} frozen, w_r ~ N(0, I_d); only W is trained.
"""

import math
from collections.abc import Callable

import torch

from schemas.experiments import EMPIRICAL_CHUNK


def relu_ntk_first_layer(X: torch.Tensor) -> torch.Tensor:
    """Infinite-width first-layer Gram: H_inf_ij = x_i.x_j (pi - theta_ij) / (2 pi).

    theta_ij is the angle between x_i and x_j, from E_w[1{w.x_i >= 0} 1{w.x_j >= 0}] =
    (pi - theta_ij) / (2 pi) for w ~ N(0, I) (Du, Zhai, Poczos, Singh, ICLR 2019, the Gram
    matrix H^infty; on the unit sphere x_i.x_j = cos theta_ij). Cosines are normalised by the
    diagonal and clipped to [-1, 1], and the diagonal is set to exactly 1 (theta_ii = 0), so that
    rounding cannot push arccos out of its domain. In neural-tangents' conventions this is
    `ntk - nngp` of Dense(m, W_std=sqrt(d), b_std=None) -> Relu -> Dense(1, W_std=1, b_std=None)
    with parameterization='ntk' on unit-norm inputs.

    X: (n, d) -> (n, n).
    """
    G = X @ X.T
    norms = G.diagonal().clamp_min(torch.finfo(X.dtype).tiny).sqrt()
    cosine = (G / norms[:, None] / norms[None, :]).clamp(-1.0, 1.0)
    cosine.fill_diagonal_(1.0)
    return G * (math.pi - torch.arccos(cosine)) / (2 * math.pi)


def relu_activation_overlap(X: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """S S^T with S = 1[X W^T >= 0]: for each pair (i, j) the number of neurons active on both.

    X: (n, d), W: (m, d) -> (n, n). Computed in float32, exact for m < 2^24.
    """
    S = (X @ W.T >= 0).to(torch.float32)
    return S @ S.T


def empirical_relu_ntk_first_layer(X: torch.Tensor, overlap: torch.Tensor, m: int) -> torch.Tensor:
    """Finite-width first-layer Gram H_ij = (x_i.x_j)/m sum_r 1[w_r.x_i >= 0] 1[w_r.x_j >= 0]
    = (X X^T) * (S S^T) / m (Du et al. 2019): one matmul of activation patterns, no autograd.

    X: (n, d), overlap: (n, n) = S S^T summed over all m neurons -> (n, n).
    """
    return (X @ X.T) * overlap.to(X.dtype) / m


def random_relu_overlap(
    X: torch.Tensor, m: int, seed: int, on_block: Callable[[int], None] | None = None
) -> torch.Tensor:
    """S S^T summed over m neurons w_r ~ N(0, I_d), drawn in blocks of EMPIRICAL_CHUNK from a
    generator on X's device seeded with `seed`; `on_block(done)` runs after each block.

    X: (n, d) -> (n, n) in float64; memory O(n^2 + n * EMPIRICAL_CHUNK) whatever m is.
    """
    n, d = X.shape
    generator = torch.Generator(device=X.device).manual_seed(seed)
    overlap = torch.zeros(n, n, dtype=torch.float64, device=X.device)
    for done in range(0, m, EMPIRICAL_CHUNK):
        block = min(EMPIRICAL_CHUNK, m - done)
        W = torch.randn(block, d, generator=generator, dtype=X.dtype, device=X.device)
        overlap += relu_activation_overlap(X, W)
        if on_block is not None:
            on_block(done + block)
    return overlap
