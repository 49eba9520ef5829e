"""The eigenvalue of largest magnitude of a symmetric operator, indefinite allowed, applied only:
randomized block Krylov iteration (Musco & Musco 2015, "Randomized block Krylov methods for
stronger and faster approximate singular value decomposition"): Rayleigh-Ritz on
span{Omega, A Omega, A^2 Omega, ...}, one block product a step, which reaches |A|_2 in
O(log n / sqrt(eps)) products where the power method needs O(log n / eps).

A Ritz pair (theta, u) of a symmetric A has an eigenvalue of A within |A u - theta u| of theta
(the Krylov-Weinstein residual bound; Parlett, The Symmetric Eigenvalue Problem, ch. 4), and theta's error is typically the
square of that over the gap: the residual relative to |theta| is the accuracy reported."""

from collections.abc import Callable
from dataclasses import dataclass

import torch

from workers.compute.lobpcg import Operator, orthonormal_combination


@dataclass(frozen=True)
class Magnitude:
    """|theta| for the Ritz value theta of largest magnitude, and how far it can be trusted."""

    value: float
    residual: float
    """|A u - theta u| / |theta| for its unit Ritz vector u."""
    products: int
    converged: bool


def largest_magnitude(
    A: Operator,
    n: int,
    block: int,
    like: torch.Tensor,
    tolerance: float,
    max_products: int,
    on_product: Callable[[int, float], None] = lambda _products, _residual: None,
) -> Magnitude:
    """max |lambda(A)| of the symmetric n x n operator A to `tolerance` in relative residual, or
    as far as `max_products` products (of at most `block` vectors each) get. Starts from a seeded
    Gaussian block; the iteration runs in `like`'s dtype and device."""
    generator = torch.Generator().manual_seed(0)
    start = torch.randn(n, min(block, n), generator=generator, dtype=like.dtype).to(like.device)
    basis = torch.linalg.qr(start)[0]
    images = A(basis)
    newest, products = basis.shape[1], 1
    while True:
        reduced = basis.T @ images
        values, vectors = torch.linalg.eigh((reduced + reduced.T) / 2)
        top = int(values.abs().argmax())
        theta, y = values[top], vectors[:, top]
        scale = float(theta.abs()) or 1.0
        residual = float((images @ y - theta * (basis @ y)).norm()) / scale
        on_product(products, residual)
        if residual <= tolerance or products >= max_products or basis.shape[1] >= n:
            break
        fresh = images[:, -newest:]
        for _ in range(2):  # classical Gram-Schmidt, twice, then orthonormalise the block
            fresh = fresh - basis @ (basis.T @ fresh)
        fresh = fresh @ orthonormal_combination(fresh)
        if fresh.shape[1] == 0:  # an invariant subspace: the Ritz values are eigenvalues
            break
        basis, images = torch.cat([basis, fresh], dim=1), torch.cat([images, A(fresh)], dim=1)
        newest, products = fresh.shape[1], products + 1
    return Magnitude(float(theta.abs()), residual, products, residual <= tolerance)
