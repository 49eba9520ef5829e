"""Result models of the `convex` experiment."""

from typing import Literal

from pydantic import Field

from schemas.common import ResultModel


class SolverReport(ResultModel):
    """How the conic solver ended, with the certificate it gives: primal and dual objectives of the
    program it saw (cvxpy's canonical form: the program's objective minus `offset`) and residuals."""

    solver: str
    status: str = Field(description="cvxpy's status; only `optimal` gives a result")
    solver_status: str = Field(description="the solver's own status word")
    iterations: int
    compile_seconds: float = Field(description="cvxpy's canonicalisation")
    solve_seconds: float = Field(description="the solver itself")
    primal_objective: float
    dual_objective: float = Field(description="a lower bound on the optimum, up to the dual residual")
    offset: float = Field(description="constant moved out of the objective by canonicalisation")
    duality_gap: float = Field(description="primal_objective - dual_objective")
    primal_residual: float = Field(description="the solver's primal infeasibility measure")
    dual_residual: float = Field(description="the solver's dual infeasibility measure")


class PatternReport(ResultModel):
    """The activation patterns D_i = diag(1[X g_i >= 0]) the ReLU program ranges over."""

    mode: Literal["exact", "sampled"]
    count: int = Field(description="distinct patterns used (the all-zero pattern left out)")
    bound: int = Field(description="most patterns n points in R^d can have: 2 sum_{k<d} C(n-1, k)")
    samples: int | None = Field(description="directions drawn (sampled mode)")
    seconds: float


class Neuron(ResultModel):
    """One hidden unit of the recovered net: f(x) = sum_j sigma(weights_j . x) output_j."""

    weights: list[float] = Field(description="first-layer weights u_j (unit norm for the SDP)")
    output: float = Field(description="output weight alpha_j")


class Recovery(ResultModel):
    """The network read off the program's solution and its objective, checked against the optimum."""

    neurons: list[Neuron]
    active: int = Field(
        description="neurons kept: the smallest pieces (solver noise) are dropped while the objective "
        "moves by at most half the result's tolerance"
    )
    objective: float = Field(description="the nonconvex objective of the recovered net")
    error: float = Field(description="|objective - optimum|, at most the result's tolerance")
    method: str = Field(description="how the neurons were read off")


class SdpMatrix(ResultModel):
    """One PSD block of the SDP's solution (Z: the neurons with alpha > 0, Z': alpha < 0) and its
    spectrum. The net lifts to Z = sum_{alpha_j > 0} alpha_j [u_j; 1][u_j; 1]^T, so tr Z = 2 sum
    alpha_j over those neurons and, where the read-off is exact, rank Z is their number."""

    name: Literal["Z", "Z'"]
    eigenvalues: list[float] = Field(
        description="all d + 1 eigenvalues of the symmetrised solution (Z + Z^T) / 2, largest first "
        "(LAPACK's symmetric solver); where the exact solution has zeros an interior-point solver "
        "leaves values of either sign near solver_tolerance"
    )
    rank: int = Field(description="numerical rank: the eigenvalues above the report's `threshold`")
    neurons: int = Field(
        description="neurons of the recovered net read off this block (alpha > 0 from Z, < 0 from Z'): "
        "equal to `rank` when the read-off over the rank's eigen-directions reproduced the optimum"
    )
    matrix: list[list[float]] | None = Field(
        None,
        description="the (d + 1) x (d + 1) block itself, row by row, as the solver returned it (symmetric "
        "to rounding), when the program asked (return_matrices)",
    )


class SdpReport(ResultModel):
    """What checks the SDP's tightness (Bartan & Pilanci 2021): the spectra and numerical ranks of
    its PSD blocks beside the neurons recovered from each."""

    threshold: float = Field(
        description="eigenvalue cutoff of the ranks: sqrt(solver_tolerance) x lambda_max, the largest "
        "eigenvalue of Z and Z' (an interior-point solver leaves a direction that is zero at the exact "
        "solution near solver_tolerance / its dual slack, below this cutoff while the slack is above "
        "it); 2 tolerance / beta when lambda_max is below that (the solution is zero within the "
        "result's tolerance: rank 0)"
    )
    matrices: list[SdpMatrix] = Field(description="Z, then Z'")


class ConvexRun(ResultModel):
    """One nonconvex run from one start."""

    seed: int
    start: Literal["random", "recovered", "given"] | None = Field(
        None, description="where the run started (the spec's `start`); null in results before it existed"
    )
    noise: float | None = Field(
        None, description="relative scale of the noise added to a recovered or given start; null for random"
    )
    status: Literal["reached", "diverged", "budget", "steps", "stalled"] = Field(
        description="reached: within the result's tolerance of the optimum; diverged: non-finite or "
        "grown 1e6-fold; budget: out of wall-clock time; steps: out of steps; stalled: L-BFGS's line "
        "search could make no further progress (a stationary point or the float floor)"
    )
    steps: int = Field(description="steps taken (L-BFGS: iterations)")
    evaluations: int | None = Field(
        None, description="L-BFGS: objective-and-gradient evaluations, line searches included; else null"
    )
    seconds: float = Field(description="wall-clock time of the run (of its stacked batch)")
    objective: float | None = Field(description="final objective (null when not finite)")
    gap: float | None = Field(description="objective - optimum")
    relative_gap: float | None = Field(
        description="gap / optimum (null when the optimum is within the tolerance of 0)"
    )
    below_optimum: Literal["sampled_upper_bound"] | None = Field(
        description="set when the run ended below the optimum by more than the tolerance, which only "
        "sampled patterns allow: their value is an upper bound and some pattern was missing"
    )
    trajectory: list[float | None] = Field(
        description="objective at the comparison's record_steps, up to the run's end (null: not finite)"
    )


class ComparisonRow(ResultModel):
    """One optimizer's runs on the nonconvex objective."""

    name: str
    hyperparameters: dict[str, float | int | str | None]
    auto: str | None = Field(description="how `auto` hyperparameters were chosen, if any were")
    runs: list[ConvexRun]
    best_gap: float | None = Field(description="smallest gap over the runs that did not diverge")
    median_gap: float | None
    seconds: float = Field(description="all runs of this optimizer")


class ConvexResult(ResultModel):
    """A certified optimum of a regularised two-layer net, its recovered network, and the gaps that
    nonconvex optimizers leave from their starts."""

    kind: Literal["convex"] = "convex"
    program: Literal["polynomial_sdp", "relu_convex"]
    objective: str = Field(description="the nonconvex objective, in words")
    n: int
    d: int
    beta: float
    optimum: float = Field(description="the program's optimal value")
    tolerance: float = Field(
        description="check_tolerance x |optimum| + solver_tolerance: how far the recovered net may miss the "
        "optimum, how close a run must come to have reached it, and how far below it one may end "
        "before that is an error"
    )
    exact: bool = Field(
        description="true: the optimum of the nonconvex problem (at any width >= active); false: "
        "sampled patterns, an upper bound on it"
    )
    solver: SolverReport
    patterns: PatternReport | None = Field(description="relu_convex only")
    recovery: Recovery
    sdp: SdpReport | None = Field(None, description="polynomial_sdp only: the PSD blocks' spectra and ranks")
    width: int = Field(description="neurons m of the nonconvex nets")
    record_steps: list[int]
    comparison: list[ComparisonRow]
    seconds: dict[str, float] = Field(description="wall-clock time of each stage")
