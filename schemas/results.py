"""Result models: what a finished job returns, validated by the worker before it is stored."""

from typing import Annotated, Literal

from pydantic import Field

from schemas.common import ResultModel


class Spectrum(ResultModel):
    """Eigenvalues of a symmetric positive semi-definite kernel matrix, largest first."""

    complete: bool = Field(description="all eigenvalues, or (large n) only the extreme ones")
    eigenvalues: list[float] = Field(
        description="sorted from largest to smallest: all of them, or the top k then the bottom k"
    )
    lambda_min: float
    lambda_max: float
    condition_number: float | None = Field(
        description="lambda_max / lambda_min; null when lambda_min <= 0 (numerically singular)"
    )
    effective_rank: float | None = Field(
        description="exp of the entropy of p_k = lambda_k / trace (Roy & Vetterli 2007); "
        "null when the spectrum is not complete"
    )
    trace: float


class Spread(ResultModel):
    """Mean and standard deviation over replicates (0 for a single replicate)."""

    mean: float
    std: float


class WidthRow(ResultModel):
    """Finite-width kernels H_m of `replicates` random networks of width m against H_inf."""

    width: int
    replicates: int
    relative_frobenius: Spread = Field(description="|H_m - H_inf|_F / |H_inf|_F")
    relative_operator: Spread = Field(description="|H_m - H_inf|_2 / |H_inf|_2")
    lambda_min: Spread = Field(description="smallest eigenvalue of H_m")


class EmpiricalStudy(ResultModel):
    method: str
    seed: int
    rows: list[WidthRow]
    width_exponent: float | None = Field(
        description="slope of log mean relative Frobenius distance against log m (theory: -1/2); "
        "null with a single width"
    )


class EncodedMatrix(ResultModel):
    """A symmetric matrix as the base64 of its upper triangle (diagonal included), row by row,
    as little-endian float64: n (n + 1) / 2 numbers."""

    n: int
    dtype: Literal["float64"] = "float64"
    layout: Literal["upper_triangle_row_major"] = "upper_triangle_row_major"
    encoding: Literal["base64"] = "base64"
    data: str


class KernelResult(ResultModel):
    """Spectrum and label alignment of the analytic tangent kernel, and finite-width checks."""

    kind: Literal["kernel"] = "kernel"
    kernel: str = Field(description="which kernel: network, activation and trained layers")
    dtype: str = Field(description="floating-point type the kernel and spectrum were computed in")
    device: str
    n: int
    d: int
    spectrum: Spectrum
    label_energy: list[float] = Field(
        description="share of |y|^2 on each eigen-direction, in the order of the eigenvalues"
    )
    cumulative_energy: list[float] = Field(description="running sum of label_energy")
    alignment: float = Field(description="kernel-target alignment y^T K y / (|K|_F |y|^2)")
    empirical: EmpiricalStudy | None = None
    matrix: EncodedMatrix | None = None
    seconds: dict[str, float] = Field(description="wall-clock time of each stage")


ExperimentResult = Annotated[KernelResult, Field(discriminator="kind")]
