"""Spectra of kernel matrices and how labels spread over their eigen-directions."""

import torch


def eigendecompose(H: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues, largest first, and the matching unit eigenvectors as columns. H: (n, n)."""
    values, vectors = torch.linalg.eigh(H)
    return values.flip(0), vectors.flip(1)


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
    return float(y @ K @ y / (torch.linalg.matrix_norm(K) * (y @ y)))
