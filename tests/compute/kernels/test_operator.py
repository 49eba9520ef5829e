"""Kernels applied without being stored (workers.compute.kernels.operator) against the assembled
matrix.

A researcher whose kernel is too large to hold expects K V, the diagonal and |K|_F computed block
by block to be those of the stored kernel, for every analytic net, on points of any norm, whatever
the block size, in the iteration's float64 whichever dtype the kernel has. CPU.
"""

import pytest
import torch

from schemas.networks import FullyConnected, NetworkSpec, TwoLayerNet
from workers.compute.kernels.analytic import KernelBlocks, analytic_kernel, kernel_of
from workers.compute.kernels.operator import BlockKernel, StoredKernel

from ..helpers import points

F64 = torch.float64

NETWORKS = [
    TwoLayerNet(),
    TwoLayerNet(trained="second"),
    TwoLayerNet(trained="both", kappa=0.7),
    TwoLayerNet(activation="quadratic", trained="both"),
    FullyConnected(depth=4),
    FullyConnected(depth=3, W_std=1.5, b_std=[0.2, 0.0, 0.3], trained="last"),
    FullyConnected(depth=3, W_std=[1.2, 1.5, 0.8], b_std=0.1),
]


@pytest.mark.parametrize("network", NETWORKS, ids=lambda net: net.describe())
@pytest.mark.parametrize("rows", [7, 64, 1000], ids=["ragged", "blocks", "one block"])
def test_products_diagonal_and_norm_are_the_stored_kernels(network: NetworkSpec, rows: int) -> None:
    X = points(n=203, d=6)  # norms in [0.5, 1.5]
    H = analytic_kernel(network, X)
    K = BlockKernel(KernelBlocks(kernel_of(network, 6), X))
    K.rows = rows
    V = torch.randn(203, 5, generator=torch.Generator().manual_seed(1), dtype=F64)
    scale = float(H.abs().max())
    torch.testing.assert_close(K(V), H @ V, atol=1e-12 * scale * 203, rtol=0)
    torch.testing.assert_close(K.diagonal(), H.diagonal(), atol=1e-13 * scale, rtol=0)
    assert K.frobenius_norm() == pytest.approx(float(torch.linalg.matrix_norm(H)), rel=1e-12)
    stored = StoredKernel(H)
    torch.testing.assert_close(stored(V), H @ V, atol=0, rtol=0)


def test_the_norm_needs_no_product_first_and_products_keep_the_vectors_dtype() -> None:
    X = points(n=50, d=4).float()
    K = BlockKernel(KernelBlocks(kernel_of(TwoLayerNet(), 4), X))
    H = analytic_kernel(TwoLayerNet(), X.double())
    assert K.frobenius_norm() == pytest.approx(float(torch.linalg.matrix_norm(H)), rel=1e-5)
    V = torch.randn(50, 3, generator=torch.Generator().manual_seed(2), dtype=F64)
    product = K(V)
    assert product.dtype == F64 and K.dtype == torch.float32
    torch.testing.assert_close(product, H @ V, atol=1e-4, rtol=1e-5)
