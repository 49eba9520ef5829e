"""The `kernel` experiment: H_inf of a dataset, its spectrum and label alignment, and optionally
the finite-width kernel of m random neurons beside it."""

import math
import time

import torch

from schemas.experiments import KernelSpec
from schemas.results import EmpiricalAgreement, KernelResult, Spectrum
from workers.compute.datasets import make_data
from workers.compute.device import resolve_device, synchronize
from workers.compute.ntk import (
    empirical_relu_ntk_first_layer,
    random_relu_overlap,
    relu_ntk_first_layer,
)
from workers.compute.progress import Progress
from workers.compute.spectrum import effective_rank, eigendecompose, label_energy

DTYPE = torch.float64  # spectra down to lambda_min need it; H_inf's arccos is ill-conditioned


def summarize(values: torch.Tensor) -> Spectrum:
    """Spectrum fields from eigenvalues sorted largest first."""
    lambda_min, lambda_max = float(values[-1]), float(values[0])
    return Spectrum(
        eigenvalues=values.tolist(),
        lambda_min=lambda_min,
        lambda_max=lambda_max,
        condition_number=lambda_max / lambda_min if lambda_min > 0 else None,
        effective_rank=effective_rank(values),
        trace=float(values.sum()),
    )


def empirical_agreement(
    spec: KernelSpec, X: torch.Tensor, H: torch.Tensor, progress: Progress
) -> EmpiricalAgreement:
    """The finite-width kernel H_m of `spec.empirical_width` random neurons against H_inf:
    |H_m - H_inf|_F / |H_inf|_F, which shrinks like m^-1/2, and the largest entry gap."""
    m = spec.empirical_width
    overlap = random_relu_overlap(
        X, m, spec.empirical_seed, lambda done: progress(0.8 * done / m, f"empirical kernel {done}/{m}")
    )
    H_m = empirical_relu_ntk_first_layer(X, overlap, m)
    gap = H_m - H
    return EmpiricalAgreement(
        width=m,
        seed=spec.empirical_seed,
        relative_frobenius_error=float(torch.linalg.matrix_norm(gap) / torch.linalg.matrix_norm(H)),
        max_abs_error=float(gap.abs().max()),
        lambda_min=float(torch.linalg.eigvalsh(H_m)[0]),
    )


def run_kernel(spec: KernelSpec, progress: Progress) -> KernelResult:
    """Build H_inf (and H_m when asked), then its full spectrum and the label energy per mode."""
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
    data = make_data(spec.dataset, DTYPE, device)
    H = relu_ntk_first_layer(data.X)
    if not H.diagonal().sum() > 0:
        raise ValueError("the kernel is zero: the inputs are all zero or too small for their products")
    lap("kernel")
    empirical = None
    if spec.empirical_width > 0:
        empirical = empirical_agreement(spec, data.X, H, progress)
        lap("empirical")
    n = data.X.shape[0]
    progress(0.8 if empirical else 0.1, f"eigendecomposition of a {n}x{n} kernel")
    values, vectors = eigendecompose(H)
    energy = label_energy(vectors, data.y)
    lap("spectrum")
    if not (math.isfinite(float(values[0])) and bool(torch.isfinite(energy).all())):
        raise ValueError("the kernel has non-finite entries; check the dataset for extreme values")
    return KernelResult(
        dtype=str(DTYPE).removeprefix("torch."),
        device=str(device),
        n=n,
        d=data.X.shape[1],
        spectrum=summarize(values),
        label_energy=energy.tolist(),
        empirical=empirical,
        seconds=seconds,
    )
