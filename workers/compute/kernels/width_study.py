"""Finite-width kernels beside their infinite-width limit: for each width, tangent kernels of
networks drawn with seeded generators, their relative Frobenius and operator-norm distances to
the limit and their lambda_min, and the fitted exponent of the width law (theory: -1/2, the
central limit of a mean over m independent neurons; Jacot, Gabriel, Hongler 2018)."""

from collections.abc import Callable
from dataclasses import dataclass

import torch

from schemas.costs import EMPIRICAL_K, KRYLOV_BLOCK
from schemas.experiments import EmpiricalSpec
from schemas.networks import NetworkSpec, TwoLayerNet
from schemas.results import EmpiricalStudy, WidthRow
from workers.compute.kernels.empirical import (
    autograd_kernel,
    neuron_blocks,
    tangent_kernel,
    two_layer_empirical,
)
from workers.compute.kernels.operator import (
    BlockKernel,
    KernelOperator,
    NeuronKernel,
    StoredKernel,
    frobenius_distance,
)
from workers.compute.krylov import largest_magnitude
from workers.compute.networks import init_params
from workers.compute.progress import Progress
from workers.compute.spectrum import rounding_level, spectrum_of
from workers.compute.stats import log_slope, spread

EMPIRICAL_SPAN = (0.1, 0.95)  # of the progress bar, when finite-width kernels are asked for


def empirical_kernel(
    network: NetworkSpec,
    method: str,
    X: torch.Tensor,
    m: int,
    generator: torch.Generator,
    on_block: Callable[[int], None],
) -> torch.Tensor:
    """One finite-width kernel of width m drawn from `generator`, by the method asked for. The
    two-layer closed form draws its neurons in blocks (memory independent of m)."""
    if method == "closed_form" and network.name == "two_layer":
        return two_layer_empirical(network, X, m, generator, on_block)
    params = init_params(network, X.shape[1], m, generator, X.dtype, X.device)
    kernel = (
        tangent_kernel(network, params, X) if method == "closed_form" else autograd_kernel(network, params, X)
    )
    on_block(m)
    return kernel


def width_exponent(rows: list[WidthRow]) -> float | None:
    """Least-squares slope of log(mean relative Frobenius distance) against log(width)."""
    if len({row.width for row in rows}) < 2:
        return None
    return log_slope([row.width for row in rows], [row.relative_frobenius.mean for row in rows])


Comparison = tuple[float, float, float, float]
"""|H_m - H|_F, |H_m - H|_2, lambda_min(H_m) and the worst relative residual behind them."""


@dataclass(frozen=True)
class Accuracy:
    """What the matrix-free comparison iterates to: relative residual and products at most."""

    tolerance: float
    products: int


def empirical_study(
    spec: EmpiricalSpec,
    network: NetworkSpec,
    X: torch.Tensor,
    K: KernelOperator,
    lambda_max: float,
    limits: Accuracy,
    progress: Progress,
) -> EmpiricalStudy:
    """For each width, `replicates` random networks (seeds seed, seed+1, ...): their kernels'
    relative Frobenius and operator-norm distances to H_inf and their lambda_min. H_inf is PSD,
    so its operator norm is the lambda_max already found by the spectrum. A stored H_inf is
    compared with each H_m in full (dense eigenvalue solves); one applied block by block is
    compared with H_m applied through its Jacobian (`matrix_free_comparison`)."""
    norm_frobenius = K.frobenius_norm()
    total = spec.replicates * sum(spec.widths)
    done = 0
    rows = []
    for m in spec.widths:
        found = []
        for replicate in range(spec.replicates):
            generator = torch.Generator().manual_seed(spec.seed + replicate)

            def say(message: str, neurons: int, m: int = m, start: int = done) -> None:
                low, high = EMPIRICAL_SPAN
                progress(low + (high - low) * (start + neurons) / total, f"width {m}: {message}")

            def on_block(neurons: int, m: int = m) -> None:
                say(f"{neurons}/{m} neurons", neurons)

            if isinstance(K, StoredKernel):
                H_m = empirical_kernel(network, spec.method, X, m, generator, on_block)
                found.append(dense_comparison(H_m, K.H))
            else:
                assert isinstance(K, BlockKernel) and isinstance(network, TwoLayerNet)
                W = torch.cat([block for _, block in neuron_blocks(network, X, m, generator)])
                found.append(matrix_free_comparison(NeuronKernel(network, X, W), K, limits, say))
            done += m
        frobenius, operator, lambda_min, residuals = zip(*found, strict=True)
        rows.append(
            WidthRow(
                width=m,
                replicates=spec.replicates,
                relative_frobenius=spread([value / norm_frobenius for value in frobenius]),
                relative_operator=spread([value / lambda_max for value in operator]),
                lambda_min=spread(list(lambda_min)),
                residual=None if isinstance(K, StoredKernel) else max(residuals),
            )
        )
    return EmpiricalStudy(method=spec.method, seed=spec.seed, rows=rows, width_exponent=width_exponent(rows))


def dense_comparison(H_m: torch.Tensor, H: torch.Tensor) -> Comparison:
    """From the stored matrices: one Frobenius norm and two symmetric eigenvalue solves."""
    gap = H_m - H
    operator = float(torch.linalg.eigvalsh(gap).abs().max())
    return float(torch.linalg.matrix_norm(gap)), operator, float(torch.linalg.eigvalsh(H_m)[0]), 0.0


def matrix_free_comparison(
    H_m: NeuronKernel, H: BlockKernel, limits: Accuracy, say: Callable[[str, int], None]
) -> Comparison:
    """Without either matrix: |H_m - H|_F exactly from their rows; |H_m - H|_2 by block Krylov
    on the difference (it is indefinite); lambda_min(H_m) by LOBPCG with the Nystrom
    preconditioner, from EMPIRICAL_K pairs at each end, both to the job's spectrum tolerance
    (lambda_min's residual relative to the rounding level of a product where lambda_min is below
    it: a rank-deficient H_m); lambda_min(H_m) = 0 exactly, without iterating, when H_m's rank
    bound is below n. `say(message, neurons)` reports each product (neurons: how far along the
    replicate the progress bar stands)."""
    like = torch.empty(0, dtype=torch.float64, device=H.device)
    m = H_m.W.shape[0]

    def on_krylov(products: int, residual: float) -> None:
        say(f"|H_m - H_inf|_2 by block Krylov: {products} products, residual {residual:.1e}", m // 3)

    def on_lobpcg(products: int, residual: float) -> None:
        say(f"lambda_min(H_m) by LOBPCG: {products} products, residual {residual:.1e}", 2 * m // 3)

    operator = largest_magnitude(
        lambda V: H_m(V) - H(V), H.n, KRYLOV_BLOCK, like, limits.tolerance, limits.products, on_krylov
    )
    bottom, residual = 0.0, operator.residual
    if H_m.rank_bound >= H_m.n:
        pairs = spectrum_of(H_m, EMPIRICAL_K, limits.tolerance, limits.products, on_lobpcg)
        assert pairs.residuals is not None
        bottom = float(pairs.values[-1])
        floor = rounding_level(H_m) * float(pairs.values[0])
        residual = max(residual, float(pairs.residuals[-1]) / max(abs(bottom), floor))
    say("|H_m - H_inf|_F from both kernels' rows", m)
    return frobenius_distance(H_m, H), operator.value, bottom, residual
