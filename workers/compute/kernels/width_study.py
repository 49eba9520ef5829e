"""Finite-width kernels beside their infinite-width limit: for each width, tangent kernels of
networks drawn with seeded generators, their relative Frobenius and operator-norm distances to
the limit and their lambda_min, and the fitted exponent of the width law (theory: -1/2, the
central limit of a mean over m independent neurons; Jacot, Gabriel, Hongler 2018)."""

from collections.abc import Callable

import torch

from schemas.experiments import EmpiricalSpec
from schemas.networks import NetworkSpec
from schemas.results import EmpiricalStudy, WidthRow
from workers.compute.kernels.empirical import autograd_kernel, tangent_kernel, two_layer_empirical
from workers.compute.networks import init_params
from workers.compute.progress import Progress
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


def empirical_study(
    spec: EmpiricalSpec,
    network: NetworkSpec,
    X: torch.Tensor,
    H: torch.Tensor,
    lambda_max: float,
    progress: Progress,
) -> EmpiricalStudy:
    """For each width, `replicates` random networks (seeds seed, seed+1, ...): their kernels'
    relative Frobenius and operator-norm distances to H_inf and their lambda_min. H is PSD, so
    its operator norm is the lambda_max already found by the spectrum."""
    norm_frobenius = torch.linalg.matrix_norm(H)
    norm_operator = lambda_max
    total = spec.replicates * sum(spec.widths)
    done = 0
    rows = []
    for m in spec.widths:
        frobenius, operator, lambda_min = [], [], []
        for replicate in range(spec.replicates):
            generator = torch.Generator().manual_seed(spec.seed + replicate)

            def on_block(neurons: int, m: int = m, start: int = done) -> None:
                low, high = EMPIRICAL_SPAN
                fraction = low + (high - low) * (start + neurons) / total
                progress(fraction, f"width {m}: {neurons}/{m} neurons")

            H_m = empirical_kernel(network, spec.method, X, m, generator, on_block)
            done += m
            gap = H_m - H
            frobenius.append(float(torch.linalg.matrix_norm(gap) / norm_frobenius))
            operator.append(float(torch.linalg.eigvalsh(gap).abs().max() / norm_operator))
            lambda_min.append(float(torch.linalg.eigvalsh(H_m)[0]))
        rows.append(
            WidthRow(
                width=m,
                replicates=spec.replicates,
                relative_frobenius=spread(frobenius),
                relative_operator=spread(operator),
                lambda_min=spread(lambda_min),
            )
        )
    return EmpiricalStudy(method=spec.method, seed=spec.seed, rows=rows, width_exponent=width_exponent(rows))
