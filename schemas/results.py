"""Result models: what a finished job returns, validated by the worker before it is stored."""

from typing import Annotated, Literal

from pydantic import Field

from schemas.common import ResultModel


class Spectrum(ResultModel):
    """Eigenvalues of a symmetric positive semi-definite kernel matrix, largest first."""

    eigenvalues: list[float] = Field(description="all eigenvalues, sorted from largest to smallest")
    lambda_min: float
    lambda_max: float
    condition_number: float | None = Field(
        description="lambda_max / lambda_min; null when lambda_min <= 0 (numerically singular)"
    )
    effective_rank: float = Field(
        description="exp of the entropy of p_k = lambda_k / trace (Roy & Vetterli 2007)"
    )
    trace: float


class EmpiricalAgreement(ResultModel):
    """The finite-width kernel of `width` random neurons against the analytic one."""

    width: int
    seed: int
    relative_frobenius_error: float = Field(description="|H_m - H_inf|_F / |H_inf|_F")
    max_abs_error: float = Field(description="max_ij |H_m - H_inf|_ij")
    lambda_min: float = Field(description="smallest eigenvalue of the empirical kernel")


class KernelResult(ResultModel):
    """Spectrum and label alignment of the first-layer NTK H_inf of the two-layer ReLU net."""

    kind: Literal["kernel"] = "kernel"
    kernel: Literal["relu_ntk_first_layer"] = Field(
        "relu_ntk_first_layer",
        description="H_inf_ij = x_i.x_j (pi - arccos(cos theta_ij)) / (2 pi) (Du et al. 2019)",
    )
    dtype: str = Field(description="floating-point type the kernel and spectrum were computed in")
    device: str
    n: int
    d: int
    spectrum: Spectrum
    label_energy: list[float] = Field(
        description="share of |y|^2 on each eigen-direction, in the order of the eigenvalues"
    )
    empirical: EmpiricalAgreement | None = None
    seconds: dict[str, float] = Field(description="wall-clock time of each stage")


ExperimentResult = Annotated[KernelResult, Field(discriminator="kind")]
