"""The `kernel` experiment: the analytic tangent kernel of a dataset under a network, its
spectrum and label alignment, and finite-width kernels of random networks beside it."""

import base64
import math

import torch

from schemas.experiments import KernelSpec
from schemas.results import EncodedMatrix, KernelResult
from workers.compute.datasets import make_data
from workers.compute.device import DTYPES, Clock, resolve_device
from workers.compute.kernels.analytic import analytic_kernel
from workers.compute.kernels.regression import joint_kernel, kernel_regression
from workers.compute.kernels.width_study import empirical_study
from workers.compute.progress import Progress
from workers.compute.spectrum import alignment, label_energy, spectrum_of, summarize


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
    clock = Clock(device)
    progress(0.0, "making data")
    data = make_data(spec.dataset, DTYPES[spec.dtype], device)
    if spec.regression is None or data.X_test is None:
        H, K_test = analytic_kernel(spec.network, data.X), None
    else:
        H, K_test = joint_kernel(spec.network, data.X, data.X_test)
    if not H.diagonal().sum() > 0:
        raise ValueError("the kernel is zero: the inputs are all zero or too small for their products")
    clock.lap("kernel")
    n = data.X.shape[0]
    alignment_value = alignment(H, data.y)  # fails early, with a reason, on all-zero labels
    progress(0.05, f"eigendecomposition of a {n}x{n} kernel")
    values, vectors, complete = spectrum_of(H, spec.spectrum_k)
    energy = label_energy(vectors, data.y)
    clock.lap("spectrum")
    if not (math.isfinite(float(values[0])) and bool(torch.isfinite(energy).all())):
        raise ValueError("the kernel has non-finite entries; check the dataset for extreme values")
    regression = None
    if spec.regression is not None and K_test is not None and data.y_test is not None:
        progress(0.08, f"kernel regression on {n} training points")
        kernel = spec.network.describe()
        regression = kernel_regression(H, K_test, data.y, data.y_test, spec.regression.ridge, kernel)
        clock.lap("regression")
    empirical = None
    if spec.empirical is not None:
        empirical = empirical_study(spec.empirical, spec.network, data.X, H, float(values[0]), progress)
        clock.lap("empirical")
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
        seconds=clock.seconds,
    )
