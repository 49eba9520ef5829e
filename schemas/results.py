"""Result models: what a finished job returns, validated by the worker before it is stored."""

from typing import Annotated, Literal

from pydantic import Field

from schemas.common import ResultModel, Verdict
from schemas.convex_results import ConvexResult
from schemas.landscape_results import LandscapeResult
from schemas.ode_results import OdeResult
from schemas.weights import CHECKSUM

STEP_LOSSES = 64
"""A train run keeps its training loss at every one of its first this many steps."""


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
    residual_norms: list[float] | None = Field(
        None,
        description="|K v - lambda v| of each returned unit eigenvector, in the order of the eigenvalues: "
        "an eigenvalue of K lies within it of each reported one (null for a complete spectrum, exact "
        "to rounding)",
    )
    products: int | None = Field(
        None, description="products of the kernel with a block of vectors (passes over its entries)"
    )
    converged: bool | None = Field(
        None, description="whether every returned pair met the requested relative residual"
    )


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
    residual: float | None = Field(
        None,
        description="matrix-free comparison (more points than a stored kernel holds): the worst "
        "relative residual |A u - theta u| / |theta| over the replicates of the Ritz pairs behind "
        "lambda_min (LOBPCG on H_m) and |H_m - H_inf|_2 (block Krylov on the difference), each "
        "value within about that fraction of the true one (typically its square); null when both "
        "come from dense eigenvalue solves of stored matrices",
    )


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


class RegressionResult(ResultModel):
    """Kernel ridge regression f(x) = k(x, X) (K + ridge I)^-1 y with the analytic kernel, fitted
    on the training points and scored on the held-out ones."""

    kernel: str = Field(description="the analytic kernel K: network, activation and trained layers")
    ridge: float = Field(description="added to K's diagonal; 0: the minimum-norm interpolant")
    n_train: int
    n_test: int
    train_mse: float = Field(description="mean of (f(x_i) - y_i)^2 over the training points")
    test_mse: float = Field(description="mean of (f(x) - y)^2 over the test points")
    test_error: float | None = Field(
        description="share of test points with sign(f(x)) != y; null unless every label is +1 or -1"
    )


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
    regression: RegressionResult | None = None
    matrix: EncodedMatrix | None = None
    seconds: dict[str, float] = Field(description="wall-clock time of each stage")


class RatePiece(ResultModel):
    """One regime of a loss trajectory: log loss on a straight line against the step (linear
    convergence, loss ~ rate^k) or against log step (a power law, loss ~ k^-p)."""

    model: Literal["linear", "power"] = Field(
        description="linear: log loss regressed on the step k; power: log loss regressed on log k"
    )
    start_step: int = Field(ge=0, description="first recorded step of the piece")
    stop_step: int = Field(ge=0, description="last recorded step of the piece (inclusive)")
    rate: float | None = Field(
        description="linear piece: per-step loss factor exp(slope); null for a power piece"
    )
    exponent: float | None = Field(description="power piece: p in loss ~ k^-p; null for a linear piece")
    r2: float = Field(ge=0, le=1, description="coefficient of determination of the fit of log loss")


class RateFit(ResultModel):
    """How one recorded loss trajectory converges: linear and power-law fits of its tail, the
    verdict between them, and a change of regime (power law, then linear) when there is one."""

    verdict: Verdict = Field(
        description="the model that fits the tail better, or, after a change of regime, the "
        "model of the last piece (the asymptotic behaviour); undetermined when there are too few "
        "points, the loss does not decrease, or the better fit has R^2 below 0.9"
    )
    confidence: float = Field(
        ge=0,
        le=1,
        description="R^2 of the winning description times the share of the competitor's "
        "residual sum of squares it removes; 0 when undetermined",
    )
    rate: float | None = Field(
        description="per-step loss factor exp(slope) of the linear fit on the tail window "
        "(on the last piece after a change of regime); null without enough points"
    )
    rate_r2: float | None = Field(description="R^2 of that linear fit of log loss")
    exponent: float | None = Field(
        description="p in loss ~ k^-p from the power fit on the tail window (on the power piece "
        "after a change of regime); null without enough points"
    )
    exponent_r2: float | None = Field(description="R^2 of that power fit of log loss")
    pieces: list[RatePiece] = Field(
        description="the winning model on the tail window, or both pieces after a change of "
        "regime; empty when undetermined"
    )
    change_step: int | None = Field(
        description="first recorded step of the linear piece after a power-law phase; null when "
        "no change of regime was found"
    )
    steps_to: dict[str, int | None] = Field(
        description='keys "1e-3" and "1e-6": the first recorded step whose loss is at most that '
        "fraction of the initial loss; null if never reached"
    )


class ConvergenceOrder(ResultModel):
    """The order of convergence p of the training loss, e_{k+1} ~ C e_k^p with e_k = L_k (the
    limit of an interpolating net is 0), from the losses at consecutive steps: 1 for linear
    convergence, 2 for quadratic (workers/compute/order.py)."""

    verdict: Literal["quadratic", "superlinear", "linear", "undetermined"] = Field(
        description="with band = max(0.25, 2 order_se): quadratic if |p - 2| <= band, linear if "
        "|p - 1| <= band (order 1, power laws included), superlinear if p > 1 + band and not "
        "quadratic; undetermined with fewer than 3 usable steps, when the loss does not fall "
        "across them, or when p is near both or neither"
    )
    order: float | None = Field(
        description="p: least-squares slope of log e_{k+1} on log e_k over the usable steps; null "
        "with fewer than 3 of them"
    )
    order_se: float | None = Field(
        description="standard error of that slope, sqrt(SS_res / (m - 2) / S_xx) over m pairs; "
        "null with fewer than 3 pairs"
    )
    triple_low: float | None = Field(
        description="smallest p_k = log(e_{k+1}/e_k) / log(e_k/e_{k-1}) over consecutive triples"
    )
    triple_high: float | None = Field(description="largest such p_k")
    steps_used: int = Field(ge=0, description="losses (consecutive steps) the estimate used")
    first_step: int | None = Field(
        description="first step used: the first whose loss is an e-fold below the initial one "
        "(step 0 if none is)"
    )
    last_step: int | None = Field(description="last step used: the last above the floor")
    floor: float = Field(
        ge=0,
        description="rounding floor 1e4 eps^2 L_0 (eps of the training dtype): losses at or below "
        "it, and the steps after, are left out",
    )


class RateInterval(ResultModel):
    """Mean of a rate over replicates with its 95% Student-t interval."""

    mean: float
    low: float = Field(description="mean - t_{0.975, R-1} s / sqrt(R); the mean for R = 1")
    high: float = Field(description="mean + t_{0.975, R-1} s / sqrt(R); the mean for R = 1")
    replicates: int = Field(ge=1)


class PredictedRate(ResultModel):
    """The per-step loss factor theory predicts from a kernel spectrum for one optimizer."""

    rate: float | None = Field(
        description="asymptotic per-step loss factor (above 1: divergence); null if undefined"
    )
    formula: str = Field(description="name of the formula that gave it")
    kernel: str = Field(description="whose spectrum: H_inf, or the empirical NTK at init or at the end")


class KernelSummary(ResultModel):
    """The extreme eigenvalues of a kernel that governs the residual (loss normalisation included)."""

    kernel: Literal["analytic", "empirical_init", "empirical_final"]
    lambda_min: float
    lambda_max: float


class RunResult(ResultModel):
    """One optimizer run from one seed."""

    seed: int
    initial_checksum: str | None = Field(
        None,
        description=f"the run's initial weights, seeded or given: {CHECKSUM} (null in results stored "
        "before it was reported)",
    )
    status: Literal["converged", "diverged", "budget", "steps"] = Field(
        description="converged: loss <= tolerance (checked at every step; `steps` is the first "
        "such step and the record's last point); diverged: non-finite or grown 1e6-fold; "
        "budget: out of wall-clock time; steps: out of steps"
    )
    steps: int
    seconds: float = Field(description="wall-clock time of the run (of its stacked batch when batched)")
    final_loss: float | None
    test_mse: float | None = Field(
        description="mean of (f(x) - y)^2 over the test points at the end of the run; null without "
        "a test split or when it was non-finite"
    )
    fit: RateFit
    order: ConvergenceOrder | None = Field(
        None,
        description="order of convergence of the training loss from step_losses (null in results "
        "stored before it was measured)",
    )
    step_losses: list[float | None] | None = Field(
        None,
        description=f"the training loss at every step 0, 1, ... of the first {STEP_LOSSES}, up to the "
        "end of the run (null where non-finite; the field is null in results stored before it was kept)",
    )
    record: dict[str, list[float | None]] = Field(
        description="trajectories on the log-spaced `step` grid: train_loss, weight_change, "
        "max_neuron_change, pattern_flips, residual_top, residual_bottom, and when they apply "
        "test_loss, test_error, ntk_drift (null where non-finite)"
    )
    warnings: list[str]


class OptimizerResult(ResultModel):
    """One optimizer: its hyperparameters (auto ones resolved), runs, measured and predicted rates."""

    name: str
    hyperparameters: dict[str, float | int | str | None]
    auto: str | None = Field(description="how `auto` hyperparameters were chosen, if any were")
    runs: list[RunResult]
    rate: RateInterval | None = Field(
        description="per-step loss factor over the replicates judged linear (null if none was)"
    )
    predicted: list[PredictedRate]
    ratio: dict[str, float] = Field(description="measured / predicted rate, by kernel")
    final_kernel: KernelSummary | None = Field(
        description="empirical NTK at the end of the first replicate (null when that run diverged)"
    )


class RankEntry(ResultModel):
    optimizer: str
    steps_to_1e_6: float | None = Field(description="mean steps to 1e-6 of the initial loss")
    seconds_to_1e_6: float | None


class TrainResult(ResultModel):
    """Several optimizers on one network and dataset, measured and set beside theory."""

    kind: Literal["train"] = "train"
    dtype: str
    device: str
    batched: bool = Field(description="whether each optimizer's replicates ran as one stacked batch")
    n: int
    d: int
    width: int
    parameters: int
    loss: Literal["sum", "mean"]
    kernels: list[KernelSummary] = Field(description="H_inf and the empirical NTK at init (first seed)")
    optimizers: list[OptimizerResult]
    ranking: list[RankEntry] = Field(description="fastest to 1e-6 of the initial loss first")


ExperimentResult = Annotated[
    KernelResult | TrainResult | LandscapeResult | OdeResult | ConvexResult, Field(discriminator="kind")
]
