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

RANK_FLOOR = {torch.float64: 1e-10, torch.float32: 1e-5}
"""Sketched eigenvalues below RANK_FLOOR[dtype of the sketch] times the largest count as zero
(float32: ~100 eps; H_inf's smallest sketched one at n = 32768, r = 3072 is 4.9e-5 of its largest,
the rounding of a rank-55 quadratic kernel's null space ~1e-7)."""
ROW_CHUNK = 4096
"""Rows per step of an in-place product A <- A M (its temporary: ROW_CHUNK x r)."""
SKETCH_CHUNK = 1024
"""Sketch vectors per product with the sketch's operator (each product copies and scales its
vectors and makes its output: n x 1024 each, not n x r)."""
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


@dataclass(frozen=True)
class Sketch:
    """What the bottom's Nystrom preconditioner is built from: `operator`, K itself or a copy of
    it in a lower precision (a preconditioner need not be exact: float32 halves the sketch's
    memory and time), applied to `rank` orthonormal vectors of `dtype`. When it is K itself,
    its products also start the iteration; else one product with K does."""

    operator: Operator
    rank: int
    dtype: torch.dtype


@dataclass
class Nystrom:
    """K ~ U diag(lam) U^T from one sketch Y = K Omega (Omega orthonormal, r columns), stabilised
    by the shift nu = eps |Y|_F (Frangella et al. 2023, Algorithm 2.1), in the sketch's dtype. As
    a preconditioner for the bottom of K: T = U diag(1 / lam) U^T + (I - U U^T) / lam_r."""

    U: torch.Tensor
    lam: torch.Tensor

    @classmethod
    def from_sketch(cls, omega: torch.Tensor, Y: torch.Tensor) -> "Nystrom":
        """From Omega and Y = K Omega; Y's memory becomes U (no other n x r array is made), and
        the r x r algebra runs in the sketch's dtype: B = (Y + nu Omega) C^-T (C C^T =
        Omega^T (Y + nu Omega)), then U = B V / S from the eigenvectors of B^T B = V S^2 V^T."""
        shift = torch.finfo(Y.dtype).eps * float(torch.linalg.matrix_norm(Y))
        Y.add_(omega, alpha=shift)
        core = omega.T @ Y
        factor = torch.linalg.cholesky((core + core.T) / 2)
        del core
        B = right_multiply_(Y, lower_inverse(factor).T)
        gram = B.T @ B
        squares, V = torch.linalg.eigh((gram + gram.T) / 2)
        del gram
        squares, V = squares.flip(0).clamp_min(torch.finfo(squares.dtype).tiny), V.flip(1)
        U = right_multiply_(B, V.div_(squares.sqrt()))
        return cls(U, (squares - shift).clamp_min(0.0))

    def full_rank(self) -> bool:
        """Whether the sketch left a part of the spectrum above rounding for T to work on: a
        kernel of rank < r (the quadratic one has rank <= d (d + 1) / 2) is captured whole, and
        its bottom is a null space that plain LOBPCG finds at once, while T would divide by 0."""
        return float(self.lam[-1]) > RANK_FLOOR[self.lam.dtype] * float(self.lam[0])

    def precondition(self, R: torch.Tensor) -> torch.Tensor:
        """T R, computed in the sketch's dtype and returned in R's."""
        floor = float(self.lam[-1])
        low = R.to(self.U.dtype)
        coefficients = self.U.T @ low
        inside = self.U @ (coefficients / self.lam[:, None])
        return (inside + (low - self.U @ coefficients) / floor).to(R.dtype)


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


def right_multiply_(A: torch.Tensor, M: torch.Tensor) -> torch.Tensor:
    """A <- A M in place, ROW_CHUNK rows at a time (M: (r, r)): no second n x r array."""
    for start in range(0, A.shape[0], ROW_CHUNK):
        A[start : start + ROW_CHUNK] = A[start : start + ROW_CHUNK] @ M
    return A


def lower_inverse(L: torch.Tensor) -> torch.Tensor:
    """L^-1 of a lower triangular L (r, r)."""
    identity = torch.eye(L.shape[0], dtype=L.dtype, device=L.device)
    return torch.linalg.solve_triangular(L, identity, upper=False)


def orthonormal_columns(G: torch.Tensor) -> torch.Tensor:
    """G's columns made orthonormal in place by Cholesky QR twice, G <- G R^-1 with R^T R =
    G^T G (the second pass brings a Gaussian's float32 columns to ~1e-7 of orthonormal; Householder
    QR held three n x r arrays). G: (n, r), well conditioned."""
    for _ in range(2):
        gram = G.T @ G
        right_multiply_(G, lower_inverse(torch.linalg.cholesky((gram + gram.T) / 2)).T)
    return G


def ritz(X: torch.Tensor, KX: torch.Tensor, largest: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rayleigh-Ritz on span(X), X orthonormal: the Ritz vectors, their products and values, in
    ascending order (descending when `largest`)."""
    reduced = X.T @ KX
    values, vectors = torch.linalg.eigh((reduced + reduced.T) / 2)
    if largest:
        values, vectors = values.flip(0), vectors.flip(1)
    return X @ vectors, KX @ vectors, values


def extreme_eigenpairs(
    K: Operator,
    n: int,
    k: int,
    like: torch.Tensor,
    tolerance: float,
    max_products: int,
    sketch: Sketch,
    rounding: float,
    on_product: Callable[[int, float], None] = lambda _products, _residual: None,
) -> Eigenpairs:
    """The k largest and k smallest eigenpairs of K (n x n, symmetric PSD, applied only).

    One product of the sketch's operator with Omega (n x r, orthonormal, seeded) builds the
    Nystrom preconditioner and, by Rayleigh-Ritz on span(Omega), the starting blocks of both ends
    (their products with K from the sketch when it is K itself, else from one product). Then LOBPCG
    at the top (block k + 8) and the preconditioned LOBPCG at the bottom (block 2k, wider to
    converge through the cluster) share one product per iteration until both ends meet
    `tolerance` (or a residual of `rounding` lambda_max, the accuracy of the products) or
    `max_products` is spent; the sketch counts as a product. `like` gives the dtype and device of
    the iteration."""
    generator = torch.Generator().manual_seed(0)
    r = min(n, sketch.rank)
    top_block, bottom_block = min(n, k + 8), min(n, 2 * k)
    omega = orthonormal_columns(torch.randn(n, r, generator=generator, dtype=sketch.dtype).to(like.device))
    Y = torch.empty_like(omega)  # the product in column chunks: its temporaries stay small
    for start in range(0, r, SKETCH_CHUNK):
        Y[:, start : start + SKETCH_CHUNK] = sketch.operator(omega[:, start : start + SKETCH_CHUNK])
    reduced = (omega.T @ Y).to(like.dtype)
    _, vectors = torch.linalg.eigh((reduced + reduced.T) / 2)
    starts = torch.cat([vectors[:, -top_block:].flip(1), vectors[:, :bottom_block]], dim=1)
    S, KS = omega @ starts.to(omega.dtype), Y @ starts.to(Y.dtype)
    nystrom = Nystrom.from_sketch(omega, Y)
    del omega, Y
    if sketch.operator is K:
        products = 1
    else:  # the float32 sketch only approximates K S: take the start's products from K
        S, _ = torch.linalg.qr(S.to(like.dtype))  # keeps the top block's span first
        KS, products = K(S), 2
    top = Lobpcg(*ritz(S[:, :top_block], KS[:, :top_block], largest=True), largest=True)
    bottom = Lobpcg(
        *ritz(S[:, top_block:], KS[:, top_block:], largest=False),
        largest=False,
        precondition=nystrom.precondition if nystrom.full_rank() else None,
    )

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
