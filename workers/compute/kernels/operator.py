"""Kernels as operators: K V for a block of vectors V, from a stored matrix or from the closed
form computed block by block and never stored, so that the spectrum of a kernel too large to hold
(n = 32768 is 8 GiB in float64) costs O(n (d + width of V)) memory."""

from typing import Protocol

import torch

from schemas.costs import BLOCK_ENTRIES
from workers.compute.kernels.analytic import BLOCK_ROWS, KernelBlocks


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

    def frobenius_norm(self) -> float:
        if self._frobenius is None:
            self(torch.zeros(self.n, 0, dtype=self.dtype, device=self.device))
        return float(self._frobenius or 0.0)
