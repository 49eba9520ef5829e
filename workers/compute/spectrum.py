"""Spectra of kernel matrices (all eigenpairs, or the extreme ones of a large kernel), their
summary, and how labels spread over their eigen-directions."""

import numpy as np
import torch
from scipy.sparse.linalg import eigsh

from schemas.experiments import FULL_SPECTRUM_MAX
from schemas.results import Spectrum


def eigendecompose(H: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues, largest first, and the matching unit eigenvectors as columns. H: (n, n)."""
    values, vectors = torch.linalg.eigh(H)
    return values.flip(0), vectors.flip(1)


def extreme_eigenpairs(H: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k largest and k smallest eigenpairs of a symmetric PSD H (n, n), largest first:
    Lanczos (ARPACK) for the top, and shift-invert Lanczos about sigma slightly below 0 for the
    bottom (one LU factorisation of H - sigma I, ~2/3 n^3, then Lanczos on its inverse, whose
    largest eigenvalues are H's smallest). float64 on the CPU; a seeded start vector makes it
    repeatable. Returns values (2k,) and vectors (n, 2k) on H's device."""
    A = H.to(device="cpu", dtype=torch.float64).numpy()
    start = np.random.default_rng(0).standard_normal(A.shape[0])
    top_values, top_vectors = eigsh(A, k=k, which="LA", v0=start)
    sigma = -1e-6 * float(np.mean(np.diag(A)))
    bottom_values, bottom_vectors = eigsh(A, k=k, sigma=sigma, which="LM", v0=start)
    values = np.concatenate([top_values[::-1], np.sort(bottom_values)[::-1]])
    order = np.concatenate([np.argsort(top_values)[::-1], np.argsort(bottom_values)[::-1]])
    vectors = np.concatenate([top_vectors, bottom_vectors], axis=1)[
        :, np.concatenate([order[:k], k + order[k:]])
    ]
    return (
        torch.from_numpy(values.copy()).to(H.device, H.dtype),
        torch.from_numpy(vectors.copy()).to(H.device, H.dtype),
    )


def effective_rank(values: torch.Tensor) -> float:
    """exp(-sum_k p_k log p_k), p_k = lambda_k / sum lambda (Roy & Vetterli 2007): n for a flat
    spectrum, 1 for a rank-one kernel. Negative round-off eigenvalues count as zero."""
    p = values.clamp_min(0)
    p = p / p.sum()
    entropy = -(p * torch.log(torch.where(p > 0, p, torch.ones_like(p)))).sum()
    return float(torch.exp(entropy))


def label_energy(vectors: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(u_k . y)^2 / |y|^2 for each eigenvector u_k: the share of the label energy on each
    direction (sums to 1). vectors: (n, n) columns, y: (n,) -> (n,)."""
    return (vectors.T @ y) ** 2 / (y @ y).clamp_min(torch.finfo(y.dtype).tiny)


def alignment(K: torch.Tensor, y: torch.Tensor) -> float:
    """Kernel-target alignment <K, y y^T>_F / (|K|_F |y y^T|_F) = y^T K y / (|K|_F |y|^2)
    (Cristianini, Shawe-Taylor, Elisseeff, Kandola 2002); 1 when K is proportional to y y^T."""
    if not float(y @ y) > 0:
        raise ValueError("the labels are all zero: alignment and label energies are undefined")
    return float(y @ K @ y / (torch.linalg.matrix_norm(K) * (y @ y)))


def summarize(values: torch.Tensor, trace: float, complete: bool) -> Spectrum:
    """Spectrum fields from eigenvalues sorted largest first (all, or the extreme ones)."""
    lambda_min, lambda_max = float(values[-1]), float(values[0])
    return Spectrum(
        complete=complete,
        eigenvalues=values.tolist(),
        lambda_min=lambda_min,
        lambda_max=lambda_max,
        condition_number=lambda_max / lambda_min if lambda_min > 0 else None,
        effective_rank=effective_rank(values) if complete else None,
        trace=trace,
    )


def spectrum_of(H: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """All eigenpairs up to FULL_SPECTRUM_MAX points, else the k at each end; and which."""
    if H.shape[0] <= FULL_SPECTRUM_MAX:
        return *eigendecompose(H), True
    return *extreme_eigenpairs(H, k), False
