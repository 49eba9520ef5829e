"""The `kernel` experiment: the analytic tangent kernel of a dataset under a network, its
spectrum and label alignment, and finite-width kernels of random networks beside it."""

import base64
import math
import time
from collections.abc import Callable

import numpy as np
import torch

from schemas.experiments import FULL_SPECTRUM_MAX, EmpiricalSpec, KernelSpec
from schemas.networks import NetworkSpec
from schemas.results import EmpiricalStudy, EncodedMatrix, KernelResult, Spectrum, Spread, WidthRow
from workers.compute.datasets import make_data
from workers.compute.device import resolve_device, synchronize
from workers.compute.kernels.analytic import analytic_kernel
from workers.compute.kernels.empirical import autograd_kernel, tangent_kernel, two_layer_empirical
from workers.compute.kernels.regression import joint_kernel, kernel_regression
from workers.compute.networks import init_params
from workers.compute.progress import Progress
from workers.compute.rates import fit_line
from workers.compute.spectrum import (
    alignment,
    effective_rank,
    eigendecompose,
    extreme_eigenpairs,
    label_energy,
)

DTYPES = {"float64": torch.float64, "float32": torch.float32}
EMPIRICAL_SPAN = (0.1, 0.95)  # of the progress bar, when finite-width kernels are asked for


def summarize(values: torch.Tensor, trace: float, complete: bool) -> Spectrum:
    """Spectrum fields from eigenvalues sorted largest first (all, or the extreme ones)."""
    lambda_min, lambda_max = float(values[-1]), float(values[0])
    return Spectrum(
        complete=complete,
        eigenvalues=values.tolist(),
        lambda_min=lambda_min,
        lambda_max=lambda_max,
        condition_number=lambda_max / lambda_min if lambda_min > 0 else None,
        effective_rank=effective_rank(values) if complete else None,
        trace=trace,
    )


def spectrum_of(H: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """All eigenpairs up to FULL_SPECTRUM_MAX points, else the k at each end; and which."""
    if H.shape[0] <= FULL_SPECTRUM_MAX:
        return *eigendecompose(H), True
    return *extreme_eigenpairs(H, k), False


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


def spread(values: list[float]) -> Spread:
    tensor = torch.tensor(values, dtype=torch.float64)
    return Spread(mean=float(tensor.mean()), std=float(tensor.std()) if len(values) > 1 else 0.0)


def width_exponent(rows: list[WidthRow]) -> float | None:
    """Least-squares slope of log(mean relative Frobenius distance) against log(width)."""
    if len({row.width for row in rows}) < 2:
        return None
    widths = np.log([row.width for row in rows])
    return fit_line(widths, np.log([row.relative_frobenius.mean for row in rows])).slope


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


def encode_upper_triangle(H: torch.Tensor) -> EncodedMatrix:
    """The upper triangle of H, row by row, as base64 little-endian float64."""
    rows, cols = torch.triu_indices(H.shape[0], H.shape[0])
    values = H[rows, cols].to(device="cpu", dtype=torch.float64).numpy().astype("<f8")
    return EncodedMatrix(n=H.shape[0], data=base64.b64encode(values.tobytes()).decode())


def run_kernel(spec: KernelSpec, progress: Progress) -> KernelResult:
    """Build the analytic kernel, its spectrum and label alignment, then kernel regression and
    finite-width kernels. With regression the analytic kernel is computed once, on the training
    and test points together; the spectrum, alignment and finite-width comparisons use its
    training block (equal to the training points' own kernel up to rounding)."""
    device = resolve_device(spec.device)
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        synchronize(device)
        now = time.perf_counter()
        seconds[stage] = now - clock
        clock = now

    progress(0.0, "making data")
    data = make_data(spec.dataset, DTYPES[spec.dtype], device)
    if spec.regression is None or data.X_test is None:
        H, K_test = analytic_kernel(spec.network, data.X), None
    else:
        H, K_test = joint_kernel(spec.network, data.X, data.X_test)
    if not H.diagonal().sum() > 0:
        raise ValueError("the kernel is zero: the inputs are all zero or too small for their products")
    lap("kernel")
    n = data.X.shape[0]
    alignment_value = alignment(H, data.y)  # fails early, with a reason, on all-zero labels
    progress(0.05, f"eigendecomposition of a {n}x{n} kernel")
    values, vectors, complete = spectrum_of(H, spec.spectrum_k)
    energy = label_energy(vectors, data.y)
    lap("spectrum")
    if not (math.isfinite(float(values[0])) and bool(torch.isfinite(energy).all())):
        raise ValueError("the kernel has non-finite entries; check the dataset for extreme values")
    regression = None
    if spec.regression is not None and K_test is not None and data.y_test is not None:
        progress(0.08, f"kernel regression on {n} training points")
        kernel = spec.network.describe()
        regression = kernel_regression(H, K_test, data.y, data.y_test, spec.regression.ridge, kernel)
        lap("regression")
    empirical = None
    if spec.empirical is not None:
        empirical = empirical_study(spec.empirical, spec.network, data.X, H, float(values[0]), progress)
        lap("empirical")
    return KernelResult(
        kernel=spec.network.describe(),
        dtype=spec.dtype,
        device=str(device),
        n=n,
        d=data.X.shape[1],
        spectrum=summarize(values, float(H.diagonal().sum()), complete),
        label_energy=energy.tolist(),
        cumulative_energy=energy.cumsum(0).tolist(),
        alignment=alignment_value,
        empirical=empirical,
        regression=regression,
        matrix=encode_upper_triangle(H) if spec.return_matrix else None,
        seconds=seconds,
    )
