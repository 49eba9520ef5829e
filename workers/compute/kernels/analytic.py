"""Analytic (infinite-width) tangent and Gaussian-process kernels.

Conventions match neural-tangents' `stax` in NTK parameterization with b_std=None: for the
two-layer net, Dense(m, W_std=sqrt(d)) -> act -> Dense(1, W_std=1); for depth L,
Dense(m, W_std=sqrt(d)) -> Relu -> [Dense(m, W_std=sqrt(2)) -> Relu] x (L-2) -> Dense(1, W_std=1).
With these, stax's `nngp` is our NNGP and its `ntk` our NTK with every layer trained; for the
two-layer ReLU net `ntk - nngp` is the first-layer Gram H_inf of Du et al. (2019).

Every kernel here is homogeneous in each input: K_ij = (|x_i| |x_j|)^p F(cos t_ij) with
cos t_ij = x_i.x_j / (|x_i| |x_j|) and F applied entry by entry (p = 1 for ReLU, 2 for the
quadratic activation). A `DotProductKernel` holds p and F; `KernelBlocks` gives any block of F on
a dataset, from which the kernel is assembled (`analytic_kernel`) or applied to vectors without
being stored (`workers.compute.kernels.operator`).
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from schemas.networks import FullyConnected, NetworkSpec, TwoLayerNet

BLOCK_ROWS = 64
"""Rows per block when a kernel is assembled: a 64 x n block of float64 temporaries stays in
cache; measured fastest among 32..512 at n = 4000 (bench/ntk.py)."""

Entries = Callable[[torch.Tensor], torch.Tensor]
"""F: normalised kernel values from a block of cosines (clamped to [-1, 1], exactly 1 where
i = j); it may overwrite its argument."""


@dataclass(frozen=True)
class DotProductKernel:
    """K_ij = (|x_i| |x_j|)^degree F(cos t_ij)."""

    degree: int
    entries: Entries

    def scales(self, X: torch.Tensor) -> torch.Tensor:
        """|x_i|^degree for each row of X: (n, d) -> (n,)."""
        return X.norm(dim=1) ** self.degree

    def at_one(self, dtype: torch.dtype) -> float:
        """F(1): K_ii = |x_i|^(2 degree) F(1)."""
        return float(self.entries(torch.ones(1, 1, dtype=dtype)))


def unit_rows(X: torch.Tensor) -> torch.Tensor:
    """X with each row divided by its norm (a zero row stays zero)."""
    return X / X.norm(dim=1, keepdim=True).clamp_min(torch.finfo(X.dtype).tiny)


def _relu_first(cosine: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """kappa0 cos t = (pi - t) cos t / (2 pi): the first-layer ReLU NTK, normalised."""
    return (math.pi - theta).mul_(cosine).div_(2 * math.pi)


def _relu_second(cosine: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """kappa1 = (sin t + (pi - t) cos t) / (2 pi) (Cho & Saul 2009), sin t = sqrt((1 - c)(1 + c))."""
    sine = (1.0 - cosine).mul_(1.0 + cosine).clamp_min_(0.0).sqrt_()
    return sine.add_((math.pi - theta).mul_(cosine)).div_(2 * math.pi)


def _quadratic_first(cosine: torch.Tensor) -> torch.Tensor:
    """sigma(t) = t^2, sigma'(t) = 2t: x_i.x_j E[4 (w.x_i)(w.x_j)] = 4 (x_i.x_j)^2."""
    return cosine.square().mul_(4.0)


def _quadratic_second(cosine: torch.Tensor) -> torch.Tensor:
    """E[(w.x_i)^2 (w.x_j)^2] = |x_i|^2 |x_j|^2 + 2 (x_i.x_j)^2 (Isserlis' theorem)."""
    return cosine.square().mul_(2.0).add_(1.0)


DEGREE = {"relu": 1, "quadratic": 2}
"""sigma(kappa t) = kappa^deg sigma(t), so with w ~ N(0, kappa^2 I) the first-layer kernel
(through sigma') scales by kappa^(2 deg - 2) and the second-layer one by kappa^(2 deg); the kernel
is homogeneous of this degree in each input."""


def two_layer_entries(spec: TwoLayerNet, width: int | None = None) -> DotProductKernel:
    """The tangent kernel of the layers `spec.trained` covers (`both`: the sum of the two):
    first layer x_i.x_j E[sigma'(w.x_i) sigma'(w.x_j)], second E[sigma(w.x_i) sigma(w.x_j)]. In
    the standard and mean-field parameterizations it depends on the width m (layer_scales)."""
    if not spec.analytic:
        raise ValueError(f"the two-layer {spec.activation} net has no closed-form kernel")
    if spec.parameterization != "ntk" and width is None:
        raise ValueError(f"the {spec.parameterization} parameterization's kernel depends on the width")
    first, second = spec.layer_scales(width) if width is not None else (1.0, 1.0)
    degree = DEGREE[spec.activation]
    weights = {
        "first": first * spec.kappa ** (2 * degree - 2),
        "second": second * spec.kappa ** (2 * degree),
    }
    layers = ("first", "second") if spec.trained == "both" else (spec.trained,)

    def relu(cosine: torch.Tensor) -> torch.Tensor:
        theta = torch.arccos(cosine)
        terms = {"first": _relu_first, "second": _relu_second}
        return _weighted_sum([(weights[layer], terms[layer](cosine, theta)) for layer in layers])

    def quadratic(cosine: torch.Tensor) -> torch.Tensor:
        terms = {"first": _quadratic_first, "second": _quadratic_second}
        return _weighted_sum([(weights[layer], terms[layer](cosine)) for layer in layers])

    return DotProductKernel(degree, relu if spec.activation == "relu" else quadratic)


def _weighted_sum(terms: list[tuple[float, torch.Tensor]]) -> torch.Tensor:
    (weight, total), *rest = terms
    total = total.mul_(weight) if weight != 1.0 else total
    for weight, values in rest:
        total.add_(values, alpha=weight)
    return total


def fully_connected_entries(spec: FullyConnected, _width: int | None = None) -> DotProductKernel:
    """NTK of the depth-L ReLU net of FullyConnected, every layer trained (Jacot et al. 2018;
    Arora et al. 2019):

    Sigma^1 = Theta^1 = X X^T;  for l = 2..L with c_l = 2 (hidden) or 1 (output layer):
    Sigma^l = c_l kappa1(Sigma^{l-1}),  Theta^l = Sigma^l + c_l kappa0(Sigma^{l-1}) * Theta^{l-1}.
    Normalised by |x_i| |x_j|: the hidden layers keep Sigma^l_ii = |x_i|^2 (c_l kappa1(1) = 1),
    so each layer's angle is the arccos of the previous normalised Sigma. Depth 2 gives the
    two-layer net with both layers trained."""
    depth = spec.depth

    def entries(cosine: torch.Tensor) -> torch.Tensor:
        theta_kernel = cosine.clone()
        for layer in range(2, depth + 1):
            scale = 1.0 if layer == depth else 2.0
            theta = torch.arccos(cosine)
            kappa0 = (math.pi - theta).div_(2 * math.pi)
            cosine = _relu_second(cosine, theta).mul_(scale)
            theta_kernel = theta_kernel.mul_(kappa0).mul_(scale).add_(cosine)
            if layer < depth:
                cosine = cosine.clamp_(-1.0, 1.0)
        return theta_kernel

    return DotProductKernel(1, entries)


ENTRIES: dict[str, Callable[..., DotProductKernel]] = {
    "two_layer": two_layer_entries,
    "fully_connected": fully_connected_entries,
}


def kernel_of(spec: NetworkSpec, width: int | None = None) -> DotProductKernel:
    """The infinite-width tangent kernel of a network spec (scaled to `width` where the
    parameterization makes it width-dependent)."""
    return ENTRIES[spec.name](spec, width)


class KernelBlocks:
    """Blocks of the normalised kernel F(cos t) of a dataset X (n, d): `block(start, stop, first)`
    is F on rows start:stop and columns first: (first <= start), its entries where i = j built
    from a cosine of exactly 1 so that rounding cannot leave arccos's domain."""

    def __init__(self, kernel: DotProductKernel, X: torch.Tensor) -> None:
        self.kernel = kernel
        self.directions = unit_rows(X)
        self.scales = kernel.scales(X)
        self.n = X.shape[0]

    def block(self, start: int, stop: int, first: int) -> torch.Tensor:
        cosine = self.directions[start:stop] @ self.directions[first:].T
        cosine.clamp_(-1.0, 1.0).diagonal(start - first).fill_(1.0)
        return self.kernel.entries(cosine)


def assemble(blocks: KernelBlocks) -> torch.Tensor:
    """The (n, n) kernel: the upper triangle BLOCK_ROWS rows at a time, mirrored, then scaled by
    (|x_i| |x_j|)^p."""
    n, directions = blocks.n, blocks.directions
    out = torch.empty(n, n, dtype=directions.dtype, device=directions.device)
    for start in range(0, n, BLOCK_ROWS):
        stop = min(start + BLOCK_ROWS, n)
        values = blocks.block(start, stop, start)
        values.mul_(blocks.scales[start:stop, None]).mul_(blocks.scales[None, start:])
        out[start:stop, start:] = values
        out[start:, start:stop] = values.T
    return out


def cross_kernel(kernel: DotProductKernel, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """K(a_i, b_j) between the rows of A (t, d) and B (n, d): (t, n). A row of A equal to one of
    B gives a cosine rounded to within an ulp of 1, which the clamp keeps in arccos's domain."""
    values = kernel.entries((unit_rows(A) @ unit_rows(B).T).clamp_(-1.0, 1.0))
    return values.mul_(kernel.scales(A)[:, None]).mul_(kernel.scales(B)[None, :])


def analytic_kernel(spec: NetworkSpec, X: torch.Tensor, width: int | None = None) -> torch.Tensor:
    """The infinite-width tangent kernel of a network spec on inputs X: (n, d) -> (n, n). Use
    float64 for spectra: arccos is ill-conditioned near t = 0."""
    return assemble(KernelBlocks(kernel_of(spec, width), X))


def relu_ntk_first_layer(X: torch.Tensor) -> torch.Tensor:
    """H_inf_ij = x_i.x_j (pi - theta_ij) / (2 pi) = x_i.x_j kappa0_ij (Du et al. 2019, the Gram
    matrix H^infty; on the unit sphere x_i.x_j = cos theta_ij). stax: ntk - nngp."""
    return analytic_kernel(TwoLayerNet(), X)


def relu_nngp(X: torch.Tensor) -> torch.Tensor:
    """Second-layer kernel (NNGP) of the two-layer ReLU net: E_w[relu(w.x_i) relu(w.x_j)] =
    |x_i||x_j| (sin t + (pi - t) cos t) / (2 pi). stax: nngp."""
    return analytic_kernel(TwoLayerNet(trained="second"), X)
