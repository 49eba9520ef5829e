"""Extreme eigenpairs of a symmetric positive semi-definite operator that is only applied, never
stored: LOBPCG (Knyazev 2001) at both ends of the spectrum, advanced in lockstep so that one
product K [W_top, W_bottom] per iteration serves both, with a randomized Nystrom preconditioner
for the bottom end (Frangella, Tropp, Udell 2023, "Randomized Nystrom preconditioning").

Each product is one pass over the kernel's entries; with the entries the dominant cost, wide
blocks are cheap and converge in fewer passes. The smallest eigenvalues of a kernel sit in a
cluster; the preconditioner maps its top r directions to ~1 and leaves the rest scaled by
1 / lambda_r, which is what makes the bottom converge in tens of passes instead of hundreds."""

from collections.abc import Callable
from dataclasses import dataclass

import torch

Operator = Callable[[torch.Tensor], torch.Tensor]

RANK_FLOOR = 1e-10
"""Sketched eigenvalues below RANK_FLOOR times the largest count as zero."""
DROP = 1e-10
"""Directions whose Gram eigenvalue is below DROP times the largest are dropped from a basis:
they are (numerically) spanned by the others."""


def orthonormal_combination(S: torch.Tensor) -> torch.Tensor:
    """Z such that S Z has orthonormal columns spanning S's numerically independent directions
    (Gram matrix eigendecomposition with dropping, "SVQB"; Stathopoulos & Wu 2002). S: (n, q)."""
    norms = S.norm(dim=0).clamp_min(torch.finfo(S.dtype).tiny)
    gram = (S / norms).T @ (S / norms)
    values, vectors = torch.linalg.eigh((gram + gram.T) / 2)
    keep = values > DROP * values[-1]
    return vectors[:, keep] / values[keep].sqrt() / norms[:, None]


@dataclass
class Nystrom:
    """K ~ U diag(lam) U^T from one sketch Y = K Omega (Omega orthonormal, r columns), stabilised
    by the shift nu = eps |Y|_F (Frangella et al. 2023, Algorithm 2.1). As a preconditioner for
    the bottom of K: T = U diag(1 / lam) U^T + (I - U U^T) / lam_r."""

    U: torch.Tensor
    lam: torch.Tensor

    @classmethod
    def from_sketch(cls, omega: torch.Tensor, Y: torch.Tensor) -> "Nystrom":
        shift = torch.finfo(Y.dtype).eps * float(torch.linalg.matrix_norm(Y))
        shifted = Y + shift * omega
        core = omega.T @ shifted
        factor = torch.linalg.cholesky((core + core.T) / 2)
        B = torch.linalg.solve_triangular(factor, shifted.T, upper=False).T
        U, sigma, _ = torch.linalg.svd(B, full_matrices=False)
        return cls(U, (sigma.square() - shift).clamp_min(0.0))

    def full_rank(self) -> bool:
        """Whether the sketch left a part of the spectrum above rounding for T to work on: a
        kernel of rank < r (the quadratic one has rank <= d (d + 1) / 2) is captured whole, and
        its bottom is a null space that plain LOBPCG finds at once, while T would divide by 0."""
        return float(self.lam[-1]) > RANK_FLOOR * float(self.lam[0])

    def precondition(self, R: torch.Tensor) -> torch.Tensor:
        floor = float(self.lam[-1])
        coefficients = self.U.T @ R
        inside = self.U @ (coefficients / self.lam[:, None])
        return inside + (R - self.U @ coefficients) / floor


class Lobpcg:
    """One end of the spectrum of K: Ritz pairs (values, X) with K X kept alongside, the search
    directions P, and the step split in two around the product that the caller computes:
    `directions()` gives W = T(K X - X diag(values)) made orthonormal, `advance(W, K W)` does the
    Rayleigh-Ritz step on span [X, W, P]. Largest: the ascending order is reversed."""

    def __init__(
        self,
        X: torch.Tensor,
        KX: torch.Tensor,
        values: torch.Tensor,
        largest: bool,
        precondition: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.largest, self.precondition = largest, precondition
        self.P: torch.Tensor | None = None
        self.KP: torch.Tensor | None = None
        self._ritz(X, KX, values)

    def _ritz(self, X: torch.Tensor, KX: torch.Tensor, values: torch.Tensor) -> None:
        """Take new Ritz pairs, and their residuals K X - X diag(values) and norms once."""
        self.X, self.KX, self.values = X, KX, values
        self.residual = KX - X * values
        self.residual_norms = self.residual.norm(dim=0)

    def directions(self) -> torch.Tensor:
        R = self.residual
        W = R if self.precondition is None else self.precondition(R)
        W = W - self.X @ (self.X.T @ W)
        return W @ orthonormal_combination(W)

    def advance(self, W: torch.Tensor, KW: torch.Tensor) -> None:
        parts, products = [self.X, W], [self.KX, KW]
        if self.P is not None and self.KP is not None:
            parts.append(self.P)
            products.append(self.KP)
        S, KS = torch.cat(parts, dim=1), torch.cat(products, dim=1)
        Z = orthonormal_combination(S)
        reduced = Z.T @ (S.T @ KS) @ Z
        values, vectors = torch.linalg.eigh((reduced + reduced.T) / 2)
        b = self.X.shape[1]
        chosen = values.argsort(descending=self.largest, stable=True)[:b]
        C = Z @ vectors[:, chosen]
        tail = C.clone()
        tail[:b] = 0  # the new direction: the part of the step outside the old X
        self.P, self.KP = S @ tail, KS @ tail
        self._ritz(S @ C, KS @ C, values[chosen])


@dataclass
class Eigenpairs:
    """Eigenvalues largest first and their unit eigenvectors as columns: all of them
    (`residuals` None), or the k largest then the k smallest with their residual norms
    |K v - lambda v| (an eigenvalue lies within it of each lambda), the number of products with
    K and whether every pair reached the tolerance."""

    values: torch.Tensor
    vectors: torch.Tensor
    residuals: torch.Tensor | None = None
    products: int = 0
    converged: bool = True

    @property
    def complete(self) -> bool:
        return self.residuals is None


def converged_pairs(solver: Lobpcg, k: int, tolerance: float, floor: float) -> bool:
    """The first k pairs have |r_i| <= max(tolerance |lambda_i|, floor): relative to the
    eigenvalue, down to the rounding of the products (where a zero eigenvalue of a rank-deficient
    kernel stays)."""
    bound = (tolerance * solver.values[:k].abs()).clamp_min(floor)
    return bool((solver.residual_norms[:k] <= bound).all())


def extreme_eigenpairs(
    K: Operator,
    n: int,
    k: int,
    like: torch.Tensor,
    tolerance: float,
    max_products: int,
    sketch: int,
    rounding: float,
    on_product: Callable[[int, float], None] = lambda _products, _residual: None,
) -> Eigenpairs:
    """The k largest and k smallest eigenpairs of K (n x n, symmetric PSD, applied only).

    One product with a sketch Omega (n x r, orthonormal, seeded) builds the Nystrom
    preconditioner and, by Rayleigh-Ritz on span(Omega), the starting blocks of both ends with
    their products. Then LOBPCG at the top (block k + 8) and the preconditioned LOBPCG at the
    bottom (block 2k, wider to converge through the cluster) share one product per iteration
    until both ends meet `tolerance` (or a residual of `rounding` lambda_max, the accuracy of the
    products) or `max_products` is spent. `like` gives the dtype and device of the iteration."""
    generator = torch.Generator().manual_seed(0)
    r = min(n, sketch)
    top_block, bottom_block = min(n, k + 8), min(n, 2 * k)
    gaussian = torch.randn(n, r, generator=generator, dtype=like.dtype).to(like.device)
    omega, _ = torch.linalg.qr(gaussian)
    Y = K(omega)
    nystrom = Nystrom.from_sketch(omega, Y)
    reduced = omega.T @ Y
    values, vectors = torch.linalg.eigh((reduced + reduced.T) / 2)
    top_c, bottom_c = vectors[:, -top_block:].flip(1), vectors[:, :bottom_block]
    top = Lobpcg(omega @ top_c, Y @ top_c, values[-top_block:].flip(0), largest=True)
    bottom = Lobpcg(
        omega @ bottom_c,
        Y @ bottom_c,
        values[:bottom_block],
        largest=False,
        precondition=nystrom.precondition if nystrom.full_rank() else None,
    )
    products = 1

    def finished() -> list[bool]:
        floor = rounding * float(top.values[0])
        return [converged_pairs(solver, k, tolerance, floor) for solver in (top, bottom)]

    while products < max_products:
        done = finished()
        on_product(products, float((bottom.residual_norms[:k] / bottom.values[:k].abs()).max()))
        if all(done):
            break
        active = [solver for solver, finished in zip((top, bottom), done, strict=True) if not finished]
        blocks = [solver.directions() for solver in active]
        KW = K(torch.cat(blocks, dim=1))
        products += 1
        for solver, W, KW_part in zip(
            active, blocks, KW.split([b.shape[1] for b in blocks], dim=1), strict=True
        ):
            solver.advance(W, KW_part)
    bottom_order = torch.arange(k - 1, -1, -1, device=like.device)
    return Eigenpairs(
        values=torch.cat([top.values[:k], bottom.values[bottom_order]]),
        vectors=torch.cat([top.X[:, :k], bottom.X[:, bottom_order]], dim=1),
        residuals=torch.cat([top.residual_norms[:k], bottom.residual_norms[bottom_order]]),
        products=products,
        converged=all(finished()),
    )
