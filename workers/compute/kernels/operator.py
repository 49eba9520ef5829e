"""Kernels as operators: K V for a block of vectors V, from a stored matrix, from the closed
form computed block by block and never stored, so that the spectrum of a kernel too large to hold
(n = 32768 is 8 GiB in float64) costs O(n (d + width of V)) memory, or for a finite-width net
from its Jacobian, chunk of neurons by chunk."""

from collections.abc import Iterator
from typing import Protocol

import torch

from schemas.costs import ANALYTIC_SKETCH, BLOCK_ENTRIES, EMPIRICAL_CHUNK, EMPIRICAL_SKETCH
from schemas.networks import TwoLayerNet
from workers.compute.kernels.analytic import BLOCK_ROWS, KernelBlocks
from workers.compute.kernels.empirical import DERIVATIVES, two_layer_cross_sum
from workers.compute.networks import ACTIVATIONS


class KernelOperator(Protocol):
    """A symmetric positive semi-definite kernel K (n, n) applied to blocks of vectors."""

    n: int
    dtype: torch.dtype
    device: torch.device

    def __call__(self, V: torch.Tensor) -> torch.Tensor:
        """K V: (n, b) -> (n, b), computed in the kernel's dtype and returned in V's."""
        ...

    def diagonal(self) -> torch.Tensor:
        """K_ii: (n,)."""
        ...

    def frobenius_norm(self) -> float:
        """|K|_F."""
        ...


class StoredKernel:
    """A kernel held in memory."""

    def __init__(self, H: torch.Tensor) -> None:
        self.H, self.n, self.dtype, self.device = H, H.shape[0], H.dtype, H.device

    def __call__(self, V: torch.Tensor) -> torch.Tensor:
        return (self.H @ V.to(self.dtype)).to(V.dtype)

    def diagonal(self) -> torch.Tensor:
        return self.H.diagonal()

    def frobenius_norm(self) -> float:
        return float(torch.linalg.matrix_norm(self.H))


class BlockKernel:
    """K = D F D, D = diag(|x_i|^p), computed block by block on each product: the row block
    F[a:b, a:] of the upper triangle serves both halves, (K V)[a:b] += F[a:b, a:] (D V)[a:] and
    (K V)[b:] += F[a:b, b:]^T (D V)[a:b], so each entry is computed once per product (half the
    arccos of full rows) while the products cost 2 n^2 b flop. |K|_F comes with the first product."""

    sketch_divisor = ANALYTIC_SKETCH
    """Its bottom's preconditioner is sketched with n / sketch_divisor vectors."""

    def __init__(self, blocks: KernelBlocks) -> None:
        self.blocks, self.n = blocks, blocks.n
        self.dtype, self.device = blocks.directions.dtype, blocks.directions.device
        self.rows = max(BLOCK_ROWS, BLOCK_ENTRIES.get(self.device.type, BLOCK_ENTRIES["cpu"]) // self.n)
        self._frobenius: float | None = None

    def __call__(self, V: torch.Tensor) -> torch.Tensor:
        scales = self.blocks.scales
        W = V.to(self.dtype) * scales[:, None]
        out = torch.zeros_like(W)
        squares = scales.square()
        total = torch.zeros((), dtype=self.dtype, device=self.device)
        for start in range(0, self.n, self.rows):
            stop = min(start + self.rows, self.n)
            block = self.blocks.block(start, stop, start)
            out[start:stop].addmm_(block, W[start:])
            out[stop:].addmm_(block[:, stop - start :].T, W[start:stop])
            if self._frobenius is None:  # sum of K_ij^2: the square block once, the rest twice
                block.square_()
                whole = squares[start:stop] @ block @ squares[start:]
                square = squares[start:stop] @ block[:, : stop - start] @ squares[start:stop]
                total += 2 * whole - square
        if self._frobenius is None:
            self._frobenius = float(total.sqrt())
        return out.mul_(scales[:, None]).to(V.dtype)

    def diagonal(self) -> torch.Tensor:
        return self.blocks.diagonal()

    def lowered(self) -> "BlockKernel":
        """This kernel computed in float32 (entries to ~1e-7 relative, half the memory and time of
        a product): what a preconditioner, which need not be exact, is built from."""
        return BlockKernel(self.blocks.to(torch.float32))

    def row_block(self, start: int, stop: int) -> torch.Tensor:
        """K[start:stop, :]: (stop - start, n)."""
        scales = self.blocks.scales
        return self.blocks.block(start, stop, 0).mul_(scales[start:stop, None] * scales[None, :])

    def frobenius_norm(self) -> float:
        if self._frobenius is None:
            self(torch.zeros(self.n, 0, dtype=self.dtype, device=self.device))
        return float(self._frobenius or 0.0)


class NeuronKernel:
    """The tangent kernel of a random two-layer net at init, H_m = (1/m) sum_r k_r (NTK
    parameterization, a_r^2 = 1), applied through its Jacobian and never stored:

        H_m V = (1/m) sum_chunks J_c (J_c^T V),

    J_c the Jacobian columns of a chunk of neurons: sigma'(x_i.w_r) x_i for a trained first layer
    ((n, c d) per chunk), sigma(x_i.w_r) for a trained second one. A product costs 4 n m (d + 1) b
    flop for b vectors, against n^2 m for the entries: far fewer when (d + 1) b < n. Memory
    O(n c d) with c chosen so that a chunk's Jacobian holds about BLOCK_ENTRIES numbers."""

    sketch_divisor = EMPIRICAL_SKETCH
    """Its bottom's preconditioner is sketched with n / sketch_divisor vectors."""

    def __init__(self, spec: TwoLayerNet, X: torch.Tensor, W: torch.Tensor) -> None:
        self.spec, self.X, self.W = spec, X, W
        self.n, self.dtype, self.device = X.shape[0], X.dtype, X.device
        entries = BLOCK_ENTRIES.get(self.device.type, BLOCK_ENTRIES["cpu"])
        self.chunk = max(1, entries // (self.n * (X.shape[1] + 1)))
        self._frobenius: float | None = None

    @property
    def rank_bound(self) -> int:
        """An upper bound on H_m's rank, which is J's: its columns, m d for a trained first layer
        and m for a trained second one; for the quadratic net each layer's columns are linear in
        the d (d + 1) / 2 entries of x x^T ((w.x) x = x x^T w, (w.x)^2 = <w w^T, x x^T>). H_m is
        singular when the bound is below n."""
        d, m = self.X.shape[1], self.W.shape[0]
        columns = {"first": m * d, "second": m}
        if self.spec.activation == "quadratic":
            columns = {layer: min(count, d * (d + 1) // 2) for layer, count in columns.items()}
        trained = ("first", "second") if self.spec.trained == "both" else (self.spec.trained,)
        return sum(columns[layer] for layer in trained)

    def lowered(self) -> "NeuronKernel":
        """This kernel computed in float32: what a preconditioner, which need not be exact, is
        built from."""
        return NeuronKernel(self.spec, self.X.float(), self.W.float())

    def jacobians(self) -> Iterator[torch.Tensor]:
        """J_c for each chunk of neurons: (n, columns of the chunk)."""
        n = self.n
        first, second = self.spec.trained in ("first", "both"), self.spec.trained in ("second", "both")
        for start in range(0, self.W.shape[0], self.chunk):
            P = self.X @ self.W[start : start + self.chunk].T
            parts = []
            if first:
                S = DERIVATIVES[self.spec.activation](P).to(self.dtype)
                parts.append((S[:, :, None] * self.X[:, None, :]).reshape(n, -1))
            if second:
                parts.append(ACTIVATIONS[self.spec.activation](P))
            yield torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]

    def __call__(self, V: torch.Tensor) -> torch.Tensor:
        W = V.to(self.dtype)
        out = torch.zeros_like(W)
        for J in self.jacobians():
            out.addmm_(J, J.T @ W)
        return out.div_(self.W.shape[0]).to(V.dtype)

    def diagonal(self) -> torch.Tensor:
        out = torch.zeros(self.n, dtype=self.dtype, device=self.device)
        for J in self.jacobians():
            out += J.square().sum(dim=1)
        return out / self.W.shape[0]

    def row_block(self, start: int, stop: int) -> torch.Tensor:
        """H_m[start:stop, :] from the entries' closed form (two_layer_cross_sum), EMPIRICAL_CHUNK
        neurons at a time: n (stop - start) m work."""
        out = torch.zeros(stop - start, self.n, dtype=self.dtype, device=self.device)
        for first in range(0, self.W.shape[0], EMPIRICAL_CHUNK):
            out += two_layer_cross_sum(
                self.spec, self.X[start:stop], self.X, self.W[first : first + EMPIRICAL_CHUNK]
            )
        return out / self.W.shape[0]

    def frobenius_norm(self) -> float:
        if self._frobenius is None:
            squares = (float(self.row_block(*span).square().sum()) for span in row_spans(self.n, self.device))
            self._frobenius = sum(squares) ** 0.5
        return self._frobenius


def row_spans(n: int, device: torch.device) -> Iterator[tuple[int, int]]:
    """(start, stop) of consecutive row blocks of an n x n kernel, about BLOCK_ENTRIES entries each."""
    rows = max(1, BLOCK_ENTRIES.get(device.type, BLOCK_ENTRIES["cpu"]) // n)
    for start in range(0, n, rows):
        yield start, min(start + rows, n)


def frobenius_distance(A: NeuronKernel, B: BlockKernel) -> float:
    """|A - B|_F, from the two kernels' rows."""
    squares = (
        float((A.row_block(*span) - B.row_block(*span)).square().sum()) for span in row_spans(A.n, A.device)
    )
    return sum(squares) ** 0.5
