"""Finite-width kernels compared with the limit without storing either: the Jacobian operator
against the stored H_m, block Krylov against dense eigenvalues of an indefinite matrix, and the
whole comparison against the dense one on the same networks; then a kernel job above the stored
size through the real experiment."""

import pytest
import torch

from schemas.experiments import DENSE_EMPIRICAL_MAX, STORED_MAX, EmpiricalSpec, KernelSpec
from schemas.networks import TwoLayerNet
from workers.compute.kernels.analytic import KernelBlocks, analytic_kernel, kernel_of
from workers.compute.kernels.empirical import neuron_blocks, two_layer_empirical
from workers.compute.kernels.experiment import run_kernel
from workers.compute.kernels.operator import BlockKernel, NeuronKernel, StoredKernel, frobenius_distance
from workers.compute.kernels.width_study import Accuracy, empirical_study
from workers.compute.krylov import largest_magnitude

F64 = torch.float64
NETS = [
    TwoLayerNet(),
    TwoLayerNet(trained="both"),
    TwoLayerNet(trained="second", activation="quadratic"),
]


def sphere(n: int, d: int, seed: int) -> torch.Tensor:
    X = torch.randn(n, d, dtype=F64, generator=torch.Generator().manual_seed(seed))
    return X / X.norm(dim=1, keepdim=True)


def neurons(net: TwoLayerNet, X: torch.Tensor, m: int, seed: int) -> torch.Tensor:
    return torch.cat([block for _, block in neuron_blocks(net, X, m, torch.Generator().manual_seed(seed))])


@pytest.mark.parametrize("net", NETS, ids=lambda net: f"{net.activation}-{net.trained}")
def test_the_jacobian_operator_is_the_stored_kernel(net: TwoLayerNet) -> None:
    X, m = sphere(150, 5, 0), 3000  # m spans chunks of the closed form and of the operator
    H_m = two_layer_empirical(net, X, m, torch.Generator().manual_seed(3), lambda _done: None)
    operator = NeuronKernel(net, X, neurons(net, X, m, 3))
    V = torch.randn(150, 7, dtype=F64, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(operator(V), H_m @ V, rtol=1e-12, atol=1e-12 * float(H_m.abs().max()))
    torch.testing.assert_close(operator.diagonal(), H_m.diagonal(), rtol=1e-12, atol=0)
    torch.testing.assert_close(operator.row_block(20, 60), H_m[20:60], rtol=1e-12, atol=1e-13)
    assert operator.frobenius_norm() == pytest.approx(float(torch.linalg.matrix_norm(H_m)), rel=1e-12)
    assert operator.rank_bound >= int(torch.linalg.matrix_rank(H_m))
    H = analytic_kernel(net, X)
    blocks = BlockKernel(KernelBlocks(kernel_of(net, 5), X))
    torch.testing.assert_close(blocks.row_block(0, 150), H, rtol=1e-13, atol=1e-14)
    exact = float(torch.linalg.matrix_norm(H_m - H))
    assert frobenius_distance(operator, blocks) == pytest.approx(exact, rel=1e-11)


def test_block_krylov_finds_the_largest_magnitude_of_an_indefinite_matrix() -> None:
    G = torch.randn(400, 400, dtype=F64, generator=torch.Generator().manual_seed(1))
    A = (G + G.T) / 40
    A[0, 0] -= 0.5  # the edges of the semicircle at +-2 and one eigenvalue pushed below
    exact = float(torch.linalg.eigvalsh(A).abs().max())
    like = torch.empty(0, dtype=F64)
    found = largest_magnitude(lambda V: A @ V, 400, 8, like, 1e-8, 200)
    assert found.converged and found.residual <= 1e-8
    assert found.value == pytest.approx(exact, rel=1e-12)  # error ~ residual^2
    loose = largest_magnitude(lambda V: A @ V, 400, 8, like, 1e-3, 200)
    assert loose.products < found.products and abs(loose.value - exact) <= loose.residual * exact
    cut = largest_magnitude(lambda V: A @ V, 400, 8, like, 1e-12, 3)
    assert cut.products == 3 and not cut.converged
    low_rank = torch.outer(torch.ones(400, dtype=F64), torch.ones(400, dtype=F64)) * -2.0
    found = largest_magnitude(lambda V: low_rank @ V, 400, 8, like, 1e-10, 50)
    assert found.value == pytest.approx(800.0, rel=1e-12) and found.products <= 2


@pytest.mark.parametrize("net", NETS, ids=lambda net: f"{net.activation}-{net.trained}")
def test_the_matrix_free_comparison_is_the_dense_one(net: TwoLayerNet) -> None:
    X = sphere(300, 5, 2)
    H = analytic_kernel(net, X)
    lambda_max = float(torch.linalg.eigvalsh(H)[-1])
    spec = EmpiricalSpec(widths=[16, 512], replicates=2, seed=4)  # 16 (d + 1) < 300: singular H_m
    limits = Accuracy(tolerance=1e-9, products=400)
    blocks = BlockKernel(KernelBlocks(kernel_of(net, 5), X))
    dense = empirical_study(spec, net, X, StoredKernel(H), lambda_max, limits, lambda _f, _m: None)
    free = empirical_study(spec, net, X, blocks, lambda_max, limits, lambda _f, _m: None)
    for one, other in zip(dense.rows, free.rows, strict=True):
        assert one.residual is None and other.residual is not None and other.residual <= 1e-9
        assert other.relative_frobenius.mean == pytest.approx(one.relative_frobenius.mean, rel=1e-11)
        assert other.relative_frobenius.std == pytest.approx(one.relative_frobenius.std, rel=1e-8)
        assert other.relative_operator.mean == pytest.approx(one.relative_operator.mean, rel=1e-12)
        if one.lambda_min.mean > 1e-9 * lambda_max:
            assert other.lambda_min.mean == pytest.approx(one.lambda_min.mean, rel=1e-10)
        else:  # singular: exactly 0 from the rank bound, rounding from the dense solve
            assert other.lambda_min.mean == 0.0 and abs(one.lambda_min.mean) < 1e-12 * lambda_max
    assert free.width_exponent == pytest.approx(dense.width_exponent, rel=1e-10)


def test_a_kernel_job_above_the_stored_size_compares_widths_matrix_free() -> None:
    body = {
        "kind": "kernel",
        "dataset": {"name": "sphere", "n": STORED_MAX + 1, "d": 10, "seed": 0},
        "empirical": {"widths": [64]},
    }
    big = KernelSpec.model_validate(body)
    assert not big.stored() and big.cost().memory_bytes < 2**31  # the float32 sketches: 1.4 GB
    with pytest.raises(ValueError, match="hold the n x n kernel"):
        KernelSpec.model_validate(body | {"empirical": {"widths": [64], "method": "autograd"}})
    assert KernelSpec.model_validate(
        body | {"dataset": {**body["dataset"], "n": DENSE_EMPIRICAL_MAX}}
    ).stored()
    small = {
        **body,
        "dataset": {**body["dataset"], "n": DENSE_EMPIRICAL_MAX + 1},
        "spectrum_k": 2,
        "spectrum_tolerance": 1e-2,
    }
    spec = KernelSpec.model_validate(small)
    assert not spec.stored()
    result = run_kernel(spec, lambda _fraction, _message: None)
    assert result.empirical is not None
    (row,) = result.empirical.rows
    assert row.lambda_min.mean == 0.0  # 64 d < n
    assert row.residual is not None and row.residual <= 1e-2
    assert (
        0.1 < row.relative_frobenius.mean < 1
        and 0 < row.relative_operator.mean < row.relative_frobenius.mean * 30
    )
