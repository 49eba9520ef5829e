"""Spectra of kernels (all eigenpairs of a stored matrix, or the extreme ones of an operator
applied block by block), their summary, and how labels spread over their eigen-directions."""

import math
from collections.abc import Callable

import torch

from schemas.costs import SKETCH_RANK, sketch_rank
from schemas.experiments import FULL_SPECTRUM_MAX, SPECTRUM_PRODUCTS
from schemas.results import Spectrum
from workers.compute.kernels.operator import BlockKernel, KernelOperator, NeuronKernel, StoredKernel
from workers.compute.lobpcg import Eigenpairs, Sketch, extreme_eigenpairs

DEFAULT_TOLERANCE = 1e-6
"""Relative residual |K v - lambda v| / lambda of the extreme pairs where a caller names none."""
ROUNDING = 1e2
"""A residual below ROUNDING sqrt(n) eps lambda_max is at the rounding of a product with K (the
LOBPCG iteration itself runs in float64, the products in the kernel's dtype)."""


def eigendecompose(H: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues, largest first, and the matching unit eigenvectors as columns. H: (n, n)."""
    values, vectors = torch.linalg.eigh(H)
    return values.flip(0), vectors.flip(1)


def spectrum_of(
    K: KernelOperator,
    k: int,
    tolerance: float = DEFAULT_TOLERANCE,
    max_products: int = SPECTRUM_PRODUCTS,
    on_product: Callable[[int, float], None] = lambda _products, _residual: None,
) -> Eigenpairs:
    """All eigenpairs of a stored kernel of up to FULL_SPECTRUM_MAX points; else the k at each
    end by LOBPCG on the operator (workers.compute.lobpcg), to `tolerance` in relative residual,
    in float64 whatever the kernel's dtype."""
    if isinstance(K, StoredKernel) and K.n <= FULL_SPECTRUM_MAX:
        return Eigenpairs(*eigendecompose(K.H))
    like = torch.empty(0, dtype=torch.float64, device=K.device)
    k = min(k, K.n // 2)
    return extreme_eigenpairs(
        K, K.n, k, like, tolerance, max_products, sketch_of(K), rounding_level(K), on_product
    )


def sketch_of(K: KernelOperator) -> Sketch:
    """What the bottom's preconditioner is built from: for a kernel applied matrix-free (an
    analytic one block by block, a finite-width one through its Jacobian), its float32 copy
    with n / its `sketch_divisor` vectors (`sketch_rank`: the wide sketch that a clustered
    bottom needs, at half the memory and time of float64); for a stored kernel, itself with
    SKETCH_RANK."""
    if isinstance(K, BlockKernel | NeuronKernel):
        return Sketch(K.lowered(), sketch_rank(K.n, K.sketch_divisor), torch.float32)
    return Sketch(K, SKETCH_RANK, K.dtype)


def rounding_level(K: KernelOperator) -> float:
    """A residual below this times lambda_max is at the rounding of a product with K."""
    return ROUNDING * math.sqrt(K.n) * torch.finfo(K.dtype).eps


def effective_rank(values: torch.Tensor) -> float:
    """exp(-sum_k p_k log p_k), p_k = lambda_k / sum lambda (Roy & Vetterli 2007): n for a flat
    spectrum, 1 for a rank-one kernel. Negative round-off eigenvalues count as zero."""
    p = values.clamp_min(0)
    p = p / p.sum()
    entropy = -(p * torch.log(torch.where(p > 0, p, torch.ones_like(p)))).sum()
    return float(torch.exp(entropy))


def label_energy(vectors: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(u_k . y)^2 / |y|^2 for each eigenvector u_k: the share of the label energy on each
    direction (sums to 1 over a complete basis). vectors: (n, q) columns, y: (n,) -> (q,)."""
    return (vectors.T @ y) ** 2 / (y @ y).clamp_min(torch.finfo(y.dtype).tiny)


def alignment(K: KernelOperator, y: torch.Tensor) -> float:
    """Kernel-target alignment <K, y y^T>_F / (|K|_F |y y^T|_F) = y^T K y / (|K|_F |y|^2)
    (Cristianini, Shawe-Taylor, Elisseeff, Kandola 2002); 1 when K is proportional to y y^T."""
    if not float(y @ y) > 0:
        raise ValueError("the labels are all zero: alignment and label energies are undefined")
    Ky = K(y[:, None])[:, 0]
    return float(y @ Ky / (K.frobenius_norm() * (y @ y)))


def summarize(pairs: Eigenpairs, trace: float) -> Spectrum:
    """Spectrum fields from eigenpairs sorted largest first (all, or the extreme ones)."""
    values = pairs.values
    lambda_min, lambda_max = float(values[-1]), float(values[0])
    return Spectrum(
        complete=pairs.complete,
        eigenvalues=values.tolist(),
        lambda_min=lambda_min,
        lambda_max=lambda_max,
        condition_number=lambda_max / lambda_min if lambda_min > 0 else None,
        effective_rank=effective_rank(values) if pairs.complete else None,
        trace=trace,
        residual_norms=None if pairs.residuals is None else pairs.residuals.tolist(),
        products=None if pairs.complete else pairs.products,
        converged=None if pairs.complete else pairs.converged,
    )
