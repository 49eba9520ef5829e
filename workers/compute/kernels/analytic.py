"""Analytic (infinite-width) tangent and Gaussian-process kernels.

Conventions are neural-tangents' `stax` in NTK parameterization. The two-layer net is
Dense(m, W_std=sqrt(d) kappa, b_std=None) -> act -> Dense(1, W_std=1, b_std=None); the depth-L
net is Dense(m, W_std_1, b_std_1) -> Relu -> [Dense(m, W_std_l, b_std_l) -> Relu] x (L-2) ->
Dense(1, W_std_L, b_std_L), by default W_std = sqrt(d), sqrt(2), ..., 1 and no biases
(schemas/networks.py). stax's `nngp` is then our NNGP (`trained: second` / `last`) and its `ntk`
our NTK with every layer trained; for the two-layer ReLU net `ntk - nngp` is the first-layer Gram
H_inf of Du et al. (2019).

Every kernel here depends on the inputs through their norms and angles only:
K_ij = (|x_i| |x_j|)^p F(cos t_ij, |x_i|, |x_j|) with cos t_ij = x_i.x_j / (|x_i| |x_j|) and F
applied entry by entry. Kernels of nets without biases are homogeneous in each input and F sees
the cosine alone (p = 1 for ReLU, 2 for the quadratic activation); a deep net with biases has
p = 0 and F uses the norms. A `DotProductKernel` holds p and F; `KernelBlocks` gives any block of
F on a dataset, from which the kernel is assembled (`analytic_kernel`) or applied to vectors
without being stored (`workers.compute.kernels.operator`).
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch

from schemas.networks import FullyConnected, NetworkSpec, TwoLayerNet

BLOCK_ROWS = 64
"""Rows per block when a kernel is assembled: a 64 x n block of float64 temporaries stays in
cache; measured fastest among 32..512 at n = 4000 (bench/ntk.py)."""

Entries = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
"""F(cosine, rows, cols): normalised kernel values from a block of cosines (r, c) (clamped to
[-1, 1], exactly 1 where i = j) and the norms |x_i| of its rows (r, 1) and |x_j| of its columns
(1, c), which homogeneous kernels ignore; it may overwrite the cosines. The three broadcast: with
(n, 1) each it gives the diagonal."""


@dataclass(frozen=True)
class DotProductKernel:
    """K_ij = (|x_i| |x_j|)^degree F(cos t_ij, |x_i|, |x_j|)."""

    degree: int
    entries: Entries

    def scales(self, X: torch.Tensor) -> torch.Tensor:
        """|x_i|^degree for each row of X: (n, d) -> (n,)."""
        return X.norm(dim=1) ** self.degree

    def diagonal(self, norms: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
        """K_ii = |x_i|^(2 degree) F(1, |x_i|, |x_i|) from the norms (n,) and scales (n,)."""
        column = norms[:, None]
        return scales.square() * self.entries(torch.ones_like(column), column, column)[:, 0]


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


def two_layer_entries(spec: TwoLayerNet, _d: int, width: int | None = None) -> DotProductKernel:
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

    def relu(cosine: torch.Tensor, _rows: torch.Tensor, _cols: torch.Tensor) -> torch.Tensor:
        theta = torch.arccos(cosine)
        terms = {"first": _relu_first, "second": _relu_second}
        return _weighted_sum([(weights[layer], terms[layer](cosine, theta)) for layer in layers])

    def quadratic(cosine: torch.Tensor, _rows: torch.Tensor, _cols: torch.Tensor) -> torch.Tensor:
        terms = {"first": _quadratic_first, "second": _quadratic_second}
        return _weighted_sum([(weights[layer], terms[layer](cosine)) for layer in layers])

    return DotProductKernel(degree, relu if spec.activation == "relu" else quadratic)


def _weighted_sum(terms: list[tuple[float, torch.Tensor]]) -> torch.Tensor:
    (weight, total), *rest = terms
    total = total.mul_(weight) if weight != 1.0 else total
    for weight, values in rest:
        total.add_(values, alpha=weight)
    return total


def fully_connected_entries(spec: FullyConnected, d: int, _width: int | None = None) -> DotProductKernel:
    """NTK (`trained: all`) or NNGP (`last`) of the depth-L ReLU net of FullyConnected (Jacot et
    al. 2018; Arora et al. 2019; Lee et al. 2018; stax's Dense + Relu), w_l = W_std_l^2,
    b_l = b_std_l^2:

    Sigma^1 = w_1 <x, x'> / d + b_1,   Theta^1 = Sigma^1;   for l = 2..L:
    Sigma^l = w_l kappa1(Sigma^{l-1}) + b_l,   Theta^l = Sigma^l + w_l kappa0(Sigma^{l-1}) * Theta^{l-1};
    NTK = Theta^L, NNGP = Sigma^L. By default w = d, 2, ..., 2, 1 and b = 0.
    Without biases the kernel is homogeneous (degree 1) and computed normalised by |x_i| |x_j|;
    with biases, from the norms (degree 0)."""
    weights = spec.weight_variances(d)
    biases = [std * std for std in spec.bias_stds()]
    first = weights[0] / d
    nngp = spec.trained == "last"
    if spec.has_biases:
        return DotProductKernel(0, partial(_deep_biased, first, weights[1:], biases, nngp))
    return DotProductKernel(1, partial(_deep_homogeneous, first, weights[1:], nngp))


def _deep_homogeneous(
    first: float,
    weights: list[float],
    nngp: bool,
    cosine: torch.Tensor,
    _rows: torch.Tensor,
    _cols: torch.Tensor,
) -> torch.Tensor:
    """The recursion without biases, divided by |x_i| |x_j|: Sigma^l = s_l |x_i| |x_j| c^l with a
    diagonal s_l shared by every point (s_1 = w_1 / d, s_l = w_l s_{l-1} / 2 since kappa1 is
    half the variance at t = 0) and the correlation c^l (c^1 = cos t). Each layer's angle is the
    arccos of the previous c. By default s_l = 1 up to the readout and c^l is the normalised
    Sigma, exactly (the multiplications and divisions by 1 are exact)."""
    scale = first
    sigma = cosine.mul(scale) if scale != 1.0 else cosine.clone()
    theta_kernel = None if nngp else sigma
    for layer, weight in enumerate(weights, start=2):
        angle = torch.arccos(cosine)
        sigma = _relu_second(cosine, angle).mul_(weight * scale)
        if theta_kernel is not None:
            kappa0 = (math.pi - angle).div_(2 * math.pi)
            theta_kernel = theta_kernel.mul_(kappa0).mul_(weight).add_(sigma)
        scale = weight * scale / 2
        if layer <= len(weights):
            cosine = (sigma / scale).clamp_(-1.0, 1.0)
    return sigma if theta_kernel is None else theta_kernel


def _deep_biased(
    first: float,
    weights: list[float],
    biases: list[float],
    nngp: bool,
    cosine: torch.Tensor,
    rows: torch.Tensor,
    cols: torch.Tensor,
) -> torch.Tensor:
    """The recursion with biases on the covariances themselves: Sigma^l_ij from the variances
    q_i = Sigma^l_ii, q_j (carried for the rows (r, 1) and columns (1, c)) and the correlation
    Sigma^l_ij / sqrt(q_i q_j). The variances follow q <- w_l q / 2 + b_l by the same operations
    as the entries where cos t = 1, so the diagonal's correlation stays exactly 1."""
    tiny = torch.finfo(cosine.dtype).tiny
    q_rows = (rows * rows).mul_(first).add_(biases[0])
    q_cols = (cols * cols).mul_(first).add_(biases[0])
    sigma = cosine.mul_(rows * cols).mul_(first).add_(biases[0])
    theta_kernel = None if nngp else sigma.clone()
    for weight, bias in zip(weights, biases[1:], strict=True):
        norm = (q_rows * q_cols).sqrt_()
        correlation = (sigma / norm.clamp_min(tiny)).clamp_(-1.0, 1.0)
        angle = torch.arccos(correlation)
        sigma = _relu_second(correlation, angle).mul_(norm).mul_(weight).add_(bias)
        if theta_kernel is not None:
            kappa0 = (math.pi - angle).div_(2 * math.pi)
            theta_kernel = theta_kernel.mul_(kappa0).mul_(weight).add_(sigma)
        q_rows = (q_rows * 0.5).mul_(weight).add_(bias)
        q_cols = (q_cols * 0.5).mul_(weight).add_(bias)
    return sigma if theta_kernel is None else theta_kernel


ENTRIES: dict[str, Callable[..., DotProductKernel]] = {
    "two_layer": two_layer_entries,
    "fully_connected": fully_connected_entries,
}


def kernel_of(spec: NetworkSpec, d: int, width: int | None = None) -> DotProductKernel:
    """The infinite-width kernel of a network spec on d inputs (the first layer's W_std / sqrt(d)
    enters a deep net's kernel; scaled to `width` where the parameterization makes it
    width-dependent)."""
    return ENTRIES[spec.name](spec, d, width)


class KernelBlocks:
    """Blocks of the normalised kernel F(cos t) of a dataset X (n, d): `block(start, stop, first)`
    is F on rows start:stop and columns first: (first <= start), its entries where i = j built
    from a cosine of exactly 1 so that rounding cannot leave arccos's domain."""

    def __init__(self, kernel: DotProductKernel, X: torch.Tensor) -> None:
        self.kernel, self.X = kernel, X
        self.directions = unit_rows(X)
        self.norms = X.norm(dim=1)
        self.scales = kernel.scales(X)
        self.n = X.shape[0]

    def block(self, start: int, stop: int, first: int) -> torch.Tensor:
        cosine = self.directions[start:stop] @ self.directions[first:].T
        cosine.clamp_(-1.0, 1.0).diagonal(start - first).fill_(1.0)
        return self.kernel.entries(cosine, self.norms[start:stop, None], self.norms[None, first:])

    def diagonal(self) -> torch.Tensor:
        """K_ii: (n,)."""
        return self.kernel.diagonal(self.norms, self.scales)

    def to(self, dtype: torch.dtype) -> "KernelBlocks":
        """The same kernel's blocks computed in `dtype`."""
        return KernelBlocks(self.kernel, self.X.to(dtype))


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
    cosine = (unit_rows(A) @ unit_rows(B).T).clamp_(-1.0, 1.0)
    values = kernel.entries(cosine, A.norm(dim=1)[:, None], B.norm(dim=1)[None, :])
    return values.mul_(kernel.scales(A)[:, None]).mul_(kernel.scales(B)[None, :])


def analytic_kernel(spec: NetworkSpec, X: torch.Tensor, width: int | None = None) -> torch.Tensor:
    """The infinite-width kernel of a network spec on inputs X: (n, d) -> (n, n). Use float64
    for spectra: arccos is ill-conditioned near t = 0."""
    return assemble(KernelBlocks(kernel_of(spec, X.shape[1], width), X))


def relu_ntk_first_layer(X: torch.Tensor) -> torch.Tensor:
    """H_inf_ij = x_i.x_j (pi - theta_ij) / (2 pi) = x_i.x_j kappa0_ij (Du et al. 2019, the Gram
    matrix H^infty; on the unit sphere x_i.x_j = cos theta_ij). stax: ntk - nngp."""
    return analytic_kernel(TwoLayerNet(), X)


def relu_nngp(X: torch.Tensor) -> torch.Tensor:
    """Second-layer kernel (NNGP) of the two-layer ReLU net: E_w[relu(w.x_i) relu(w.x_j)] =
    |x_i||x_j| (sin t + (pi - t) cos t) / (2 pi). stax: nngp."""
    return analytic_kernel(TwoLayerNet(trained="second"), X)
