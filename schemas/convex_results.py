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


class ConvexRun(ResultModel):
    """One nonconvex run from one random start."""

    seed: int
    status: Literal["reached", "diverged", "budget", "steps"] = Field(
        description="reached: within the result's tolerance of the optimum; diverged: non-finite or "
        "grown 1e6-fold; budget: out of wall-clock time; steps: out of steps"
    )
    steps: int
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
    nonconvex optimizers leave from random starts."""

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
    width: int = Field(description="neurons m of the nonconvex nets")
    record_steps: list[int]
    comparison: list[ComparisonRow]
    seconds: dict[str, float] = Field(description="wall-clock time of each stage")
