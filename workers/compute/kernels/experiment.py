"""The `kernel` experiment: the analytic tangent kernel of a dataset under a network, its
spectrum and label alignment, and finite-width kernels of random networks beside it."""

import base64
import math

import torch

from schemas.costs import LOBPCG_PRODUCTS
from schemas.experiments import KernelSpec
from schemas.results import EncodedMatrix, KernelResult
from workers.compute.datasets import make_data
from workers.compute.device import DTYPES, Clock, resolve_device
from workers.compute.kernels.analytic import KernelBlocks, analytic_kernel, kernel_of
from workers.compute.kernels.operator import BlockKernel, KernelOperator, StoredKernel
from workers.compute.kernels.regression import joint_kernel, kernel_regression
from workers.compute.kernels.width_study import Accuracy, empirical_study
from workers.compute.progress import Progress
from workers.compute.spectrum import alignment, label_energy, spectrum_of, summarize


def encode_upper_triangle(H: torch.Tensor) -> EncodedMatrix:
    """The upper triangle of H, row by row, as base64 little-endian float64."""
    rows, cols = torch.triu_indices(H.shape[0], H.shape[0])
    values = H[rows, cols].to(device="cpu", dtype=torch.float64).numpy().astype("<f8")
    return EncodedMatrix(n=H.shape[0], data=base64.b64encode(values.tobytes()).decode())


def kernel_operator(
    spec: KernelSpec, X: torch.Tensor, X_test: torch.Tensor | None
) -> tuple[KernelOperator, torch.Tensor | None]:
    """The analytic kernel on the training points, stored when the job needs the matrix
    (spec.stored()) and else applied block by block; with regression, also the cross kernel
    between the test and the training points."""
    if spec.regression is not None and X_test is not None:
        H, K_test = joint_kernel(spec.network, X, X_test)
        return StoredKernel(H), K_test
    if spec.stored():
        return StoredKernel(analytic_kernel(spec.network, X)), None
    return BlockKernel(KernelBlocks(kernel_of(spec.network, X.shape[1]), X)), None


def run_kernel(spec: KernelSpec, progress: Progress) -> KernelResult:
    """Build the analytic kernel (or its operator), its spectrum and label alignment, then kernel
    regression (with the test-by-training cross kernel) and finite-width kernels."""
    device = resolve_device(spec.device)
    clock = Clock(device)
    progress(0.0, "making data")
    data = make_data(spec.dataset, DTYPES[spec.dtype], device)
    K, K_test = kernel_operator(spec, data.X, data.X_test)
    trace = float(K.diagonal().sum())
    if not trace > 0:
        raise ValueError("the kernel is zero: the inputs are all zero or too small for their products")
    clock.lap("kernel")
    n = K.n
    alignment_value = alignment(K, data.y)  # fails early, with a reason, on all-zero labels
    progress(0.05, f"eigenpairs of a {n}x{n} kernel")

    def on_product(products: int, residual: float) -> None:
        fraction = 0.05 + 0.85 * min(1.0, products / LOBPCG_PRODUCTS)
        progress(fraction, f"LOBPCG: {products} kernel products, worst relative residual {residual:.1e}")

    pairs = spectrum_of(K, spec.spectrum_k, spec.spectrum_tolerance, spec.spectrum_products, on_product)
    energy = label_energy(pairs.vectors.to(data.y.dtype), data.y)
    clock.lap("spectrum")
    if not (math.isfinite(float(pairs.values[0])) and bool(torch.isfinite(energy).all())):
        raise ValueError("the kernel has non-finite entries; check the dataset for extreme values")
    H = K.H if isinstance(K, StoredKernel) else None
    regression = None
    if spec.regression is not None and K_test is not None and data.y_test is not None and H is not None:
        progress(0.9, f"kernel regression on {n} training points")
        kernel = spec.network.describe()
        regression = kernel_regression(H, K_test, data.y, data.y_test, spec.regression.ridge, kernel)
        clock.lap("regression")
    empirical = None
    if spec.empirical is not None:
        limits = Accuracy(spec.spectrum_tolerance, spec.spectrum_products)
        empirical = empirical_study(
            spec.empirical, spec.network, data.X, K, float(pairs.values[0]), limits, progress
        )
        clock.lap("empirical")
    return KernelResult(
        kernel=spec.network.describe(),
        dtype=spec.dtype,
        device=str(device),
        n=n,
        d=data.X.shape[1],
        spectrum=summarize(pairs, trace),
        label_energy=energy.tolist(),
        cumulative_energy=energy.cumsum(0).tolist(),
        alignment=alignment_value,
        empirical=empirical,
        regression=regression,
        matrix=encode_upper_triangle(H) if spec.return_matrix and H is not None else None,
        seconds=clock.seconds,
    )
