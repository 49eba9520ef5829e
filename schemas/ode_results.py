"""Results of the `ode` experiment: trajectories on a time grid, continuous-time rates, the
exact-against-integrated check, the discrete and finite-width gaps and their fitted orders."""

from typing import Literal

from pydantic import Field

from schemas.common import ResultModel, Verdict
from schemas.weights import CHECKSUM


class ContinuousRate(ResultModel):
    """How the loss of one trajectory decays in continuous time, fitted by the rate module
    (workers/compute/rates.py, on times that are integer multiples of a quantum) and converted:
    a linear fit of log loss against t gives the decay exponent c (loss ~ exp(-c t)); a fit
    against log t gives the power p (loss ~ t^-p)."""

    verdict: Verdict = Field(
        description="linear: exponential decay in t; sublinear: a power law; rules of fit_rates"
    )
    confidence: float = Field(ge=0, le=1)
    loss_decay: float | None = Field(description="c in loss ~ exp(-c t) on the tail window (1/time)")
    residual_decay: float | None = Field(description="c / 2: |e| ~ exp(-c t / 2), the rate of the residual")
    decay_r2: float | None = Field(description="R^2 of the linear fit of log loss against t")
    loss_exponent: float | None = Field(description="p in loss ~ t^-p on the tail window")
    exponent_r2: float | None = Field(description="R^2 of the fit of log loss against log t")
    change_time: float | None = Field(description="start of the exponential piece after a power law, if any")
    time_to: dict[str, float | None] = Field(
        description='keys "1e-3", "1e-6": first grid time whose loss is at most that fraction of the initial'
    )


class TheoryRate(ResultModel):
    """What the exact mode solutions predict for the slowest mode, beside the measurement."""

    model: Literal["linear", "power"]
    residual_decay: float | None = Field(description="predicted rate of |e| (linear model), 1/time")
    loss_exponent: float | None = Field(description="predicted p in loss ~ t^-p (power model)")
    formula: str
    ratio: float | None = Field(
        description="measured / predicted (residual_decay or loss_exponent); null when the verdict "
        "differs from the model or a value is missing"
    )


class ModeTrace(ResultModel):
    """The residual along one eigen-direction u_i of K: u_i . e(t) (exact solution)."""

    index: int = Field(description="position in the spectrum sorted largest first")
    eigenvalue: float
    residual: list[float]


class IntegratorCheck(ResultModel):
    """The numerical integrator (torchdiffeq) against the exact solution on the grid."""

    method: str
    rtol: float
    atol: float
    step_size: float | None
    evaluations: int = Field(description="vector-field evaluations (each one product with K)")
    max_difference: float = Field(description="max over the grid of |e_exact(t) - e_integrated(t)|_2")
    relative_difference: float = Field(description="max_difference / |e(0)|_2")
    residual_norm: list[float] | None = Field(
        None, description="|e(t)|_2 of the integrated solution on the grid (absent from older results)"
    )
    start: str = Field(description="how the integration starts (the singular start of nesterov)")
    seconds: float


class DiscreteRow(ResultModel):
    """One step size: the discrete iteration against the ODE at the same times."""

    lr: float = Field(description="absolute step size eta")
    momentum: float | None = Field(description="constant momentum used; null for GD and the schedule")
    steps: int = Field(description="iterations run: about t_max / time_per_step")
    time_per_step: float = Field(description="ODE time of one step: lr (GD) or sqrt(lr)")
    gap: float = Field(description="max over recorded steps k of |e_k - e(k time_per_step)|_2 / |e(0)|_2")
    times: list[float] | None = Field(
        None, description="ODE times k time_per_step of the recorded steps k, nearest the grid's"
    )
    residual_norm: list[float] | None = Field(
        None, description="|e_k|_2 of the discrete iteration at those steps (absent from older results)"
    )
    network_gap: float | None = Field(
        None,
        description="the finite network trained with the same optimizer: max over recorded steps k of "
        "| |f_k - y|_2 - |e(k time_per_step)|_2 | / |e(0)|_2, the ODE started from the network's e(0)",
    )


class DiscreteStudy(ResultModel):
    """The discrete method of one dynamics over several step sizes."""

    method: str = Field(description="the discrete iteration, in function space")
    time_map: str
    rows: list[DiscreteRow]
    order: float = Field(description="slope of log gap against log lr (least squares)")
    expected_order: float = Field(description="1 for GD (Euler's method), 1/2 for the momentum methods")
    network: str | None = Field(None, description="the finite network trained beside, and with what")
    network_checksum: str | None = Field(
        None, description=f"its initial weights, seeded or given: {CHECKSUM}"
    )
    network_order: float | None = Field(
        None,
        description="slope of log network_gap against log lr: it follows `order` until the gap reaches "
        "the finite-width floor (the net's kernel is not H_inf), then flattens",
    )


class DynamicsResult(ResultModel):
    """One ODE on the grid: its exact solution, its integrated check, rates and discrete gaps."""

    name: str
    equation: str
    parameters: dict[str, float] = Field(description="resolved constants: gamma, r, mu, lr, momentum")
    residual_norm: list[float] = Field(description="|e(t)|_2 on the grid (exact solution)")
    loss: list[float] = Field(description="the loss on the grid: 1/2 |e|^2, or divided by n")
    modes: list[ModeTrace]
    integrated: IntegratorCheck | None
    fit: ContinuousRate
    predicted: TheoryRate
    discrete: DiscreteStudy | None
    seconds: float = Field(description="wall-clock time of the exact solution on the grid")


class WidthGap(ResultModel):
    """Finite networks of one width against the function-space flow on H_inf."""

    width: int
    replicates: int
    gap_mean: float = Field(description="mean over replicates of max_t |e_m(t) - e_inf(t)|_2 / |e_m(0)|_2")
    gap_std: float = Field(description="standard deviation over replicates (0 for one)")
    evaluations: int = Field(description="vector-field evaluations of the integrator, all replicates")


class ParameterStudy(ResultModel):
    """One flow in parameter space over several widths."""

    dynamics: Literal["gd_flow", "heavy_ball"]
    equation: str
    rows: list[WidthGap]
    width_exponent: float = Field(description="slope of log mean gap against log m (theory about -1/2)")


class OdeResult(ResultModel):
    """Continuous-time limits of GD, heavy ball and Nesterov under one kernel."""

    kind: Literal["ode"] = "ode"
    kernel: str = Field(description="which kernel: analytic H_inf or the empirical NTK at init")
    dtype: str
    device: str
    n: int
    d: int
    loss: Literal["sum", "mean"]
    lambda_min: float = Field(
        description="of K, the kernel that governs the residual (loss scaling included)"
    )
    lambda_max: float
    t: list[float] = Field(description="the time grid")
    initial_loss: float
    initial_checksum: str | None = Field(
        None,
        description=f"the empirical_init net's initial weights, seeded or given (null for H_inf): {CHECKSUM}",
    )
    dynamics: list[DynamicsResult]
    parameter_space: list[ParameterStudy] | None
    seconds: dict[str, float] = Field(description="wall-clock time of each stage")
