"""The `convex` experiment: exact convex programs for two-layer nets (docs/science.md §6) and the
gap nonconvex optimizers leave on the same data."""

import math
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator

from schemas.common import Device, SpecModel, seed_field
from schemas.costs import (
    BYTES_PER_ENTRY,
    HESSIAN_PRODUCTS,
    LP_WORK,
    SOLVE_WORK,
    SOLVER_ITERATIONS,
    STEP_OVERHEAD,
    Cost,
)
from schemas.datasets import DatasetSpec, ReluTeacherLabels, SphereDataset
from schemas.optimizers import GD, GGN, SGD, Adam, HeavyBall, Nesterov

SDP_N_MAX = 5000
SDP_D_MAX = 64
"""PSD blocks of order d + 1 <= 65 (digits: d = 64, n = 300 measured 19 s and 1 GB; d = 100 took 3 min, 4 GB)."""
SDP_ENTRIES_MAX = 1_500_000
"""n (d + 1)^2: coefficients of the SDP's prediction map (1.2e6 at d = 16 measured: 4 s, 0.6 GB)."""
EXACT_PATTERNS_MAX = 1024
"""Cover's bound (`pattern_bound`) on the patterns of an exact enumeration (1058 measured: 12 s)."""
SAMPLES_MAX = 100_000
RELU_ENTRIES_MAX = 1_000_000
"""patterns x n x d: coefficients of the ReLU program's sign constraints (1e6 measured: 17 s, 1 GB)."""
WIDTH_MAX = 512
COEFFICIENT_MAX = 1e3
NOISE_MAX = 10.0
GIVEN_ENTRIES_MAX = 65_536
"""width x d numbers of a net given inline as the start (512 neurons in d = 128)."""
LBFGS_HISTORY_MAX = 100
LBFGS_EVALUATIONS = 2
"""Objective-and-gradient evaluations per L-BFGS iteration for the estimate: the strong-Wolfe
search mostly accepts the first trial step (measured 1.1-1.8 per iteration over runs of 30 or more
iterations on the tests' problems; up to 3 in runs that stall at a ReLU kink or end within 10)."""

CONVEX_EXAMPLE = {
    "kind": "convex",
    "dataset": {"name": "sphere", "n": 12, "d": 2, "seed": 0, "labels": {"rule": "relu_teacher", "k": 3}},
    "program": {"name": "relu_convex", "patterns": "exact"},
    "beta": 0.01,
    "compare": [{"name": "gd"}, {"name": "heavy_ball", "momentum": 0.9}],
    "width": 30,
    "replicates": 4,
    "steps": 3000,
}


def pattern_bound(n: int, d: int) -> int:
    """Most activation patterns 1[X g >= 0] of n points in R^d with nonzero interior: the regions
    of a central arrangement of n hyperplanes, 2 sum_{k < d} C(n - 1, k) (Cover 1965)."""
    return 2 * sum(math.comb(n - 1, k) for k in range(min(d, n)))


class PolynomialProgram(SpecModel):
    """f(x) = sum_j sigma(x.u_j) alpha_j with sigma(t) = a t^2 + b t + c and |u_j| = 1, penalty
    beta sum_j |alpha_j|: solved exactly by an SDP (Bartan & Pilanci 2021)."""

    name: Literal["polynomial_sdp"] = "polynomial_sdp"
    a: float = Field(1.0, ge=-COEFFICIENT_MAX, le=COEFFICIENT_MAX, description="coefficient of t^2")
    b: float = Field(1.0, ge=-COEFFICIENT_MAX, le=COEFFICIENT_MAX, description="coefficient of t")
    c: float = Field(0.0, ge=-COEFFICIENT_MAX, le=COEFFICIENT_MAX, description="constant term")
    return_matrices: bool = Field(
        False,
        description="also return the solution's PSD blocks Z and Z' themselves ((d + 1) x (d + 1) "
        f"each, d <= {SDP_D_MAX}); their eigenvalues and ranks are always returned",
    )


class ReluProgram(SpecModel):
    """f(x) = sum_j relu(x.u_j) alpha_j with weight decay beta/2 sum_j (|u_j|^2 + alpha_j^2): the
    group-lasso program over activation patterns (Pilanci & Ergen 2020)."""

    name: Literal["relu_convex"] = "relu_convex"
    patterns: Literal["exact", "sampled"] = Field(
        "exact",
        description="exact: every pattern, by an incremental enumeration of the hyperplane "
        "arrangement (one small LP per region and point): the exact optimum; sampled: the distinct "
        "patterns of `samples` random directions g ~ N(0, I_d): an upper bound on the optimum",
    )
    samples: int = Field(
        2000, ge=1, le=SAMPLES_MAX, description="random directions drawn when patterns are sampled"
    )
    pattern_seed: int = seed_field("seed of the sampled directions")


ProgramSpec = Annotated[PolynomialProgram | ReluProgram, Field(discriminator="name")]


class LBFGS(SpecModel):
    """L-BFGS (Nocedal & Wright 2006, alg. 7.4) with a strong-Wolfe line search (their alg. 3.5-3.6;
    torch.optim.LBFGS) in float64, one replicate at a time (each has its own line search). A
    step is one iteration, which evaluates the objective and its gradient once or more. Convex
    comparisons only: `train` jobs do not take it."""

    name: Literal["lbfgs"] = "lbfgs"
    history: int = Field(
        10, ge=1, le=LBFGS_HISTORY_MAX, description="curvature pairs (s, y) kept for the inverse Hessian"
    )
    lr: float = Field(
        1.0,
        gt=0,
        le=10,
        description="first trial step of each line search along the quasi-Newton direction (1: the "
        "quasi-Newton step itself)",
    )


ComparisonSpec = Annotated[GD | SGD | HeavyBall | Nesterov | Adam | GGN | LBFGS, Field(discriminator="name")]
"""What the comparison runs: the optimizers of `train` (schemas.optimizers.OptimizerSpec) and L-BFGS."""


class RandomStart(SpecModel):
    """Each replicate from its own seeded random net, of scale `init_scale`."""

    name: Literal["random"] = "random"


class RecoveredStart(SpecModel):
    """Each replicate from the net recovered from the program's solution (padded to `width` with
    silent neurons), every trained parameter plus Gaussian noise of standard deviation `noise` x
    the root mean square of the recovered parameters (seeded per replicate), so that
    |theta_0 - theta*| ~ noise |theta*|. Needs width >= the recovered neurons."""

    name: Literal["recovered"] = "recovered"
    noise: float = Field(
        0.01,
        ge=0,
        le=NOISE_MAX,
        description="relative scale of the perturbation (0: start exactly at the recovered optimum)",
    )


class GivenStart(SpecModel):
    """Each replicate from the net given here, `width` neurons in R^d, with the same relative
    noise as a recovered start. ReLU: W = weights, a = outputs; polynomial: u_j = w_j / |w_j|
    (rows nonzero) and alpha_j = outputs_j, trained as s_j = sqrt|alpha_j|, t_j = sign(alpha_j) s_j."""

    name: Literal["given"] = "given"
    weights: list[list[float]] = Field(
        max_length=WIDTH_MAX, description="first-layer rows w_j: width lists of d numbers"
    )
    outputs: list[float] = Field(max_length=WIDTH_MAX, description="output weights alpha_j: width numbers")
    noise: float = Field(
        0.0, ge=0, le=NOISE_MAX, description="relative scale of a seeded perturbation per replicate"
    )

    @field_validator("weights")
    @classmethod
    def _rectangular(cls, weights: list[list[float]]) -> list[list[float]]:
        lengths = sorted({len(row) for row in weights})
        if not weights or lengths[0] == 0:
            raise ValueError("give at least one neuron, each a row of d numbers")
        if len(lengths) > 1:
            raise ValueError(f"the rows have different lengths {lengths}: give each neuron d numbers")
        if len(weights) * lengths[0] > GIVEN_ENTRIES_MAX:
            raise ValueError(
                f"{len(weights)} x {lengths[0]} weights are more than {GIVEN_ENTRIES_MAX} numbers"
            )
        return weights


StartSpec = Annotated[RandomStart | RecoveredStart | GivenStart, Field(discriminator="name")]


def _default_dataset() -> SphereDataset:
    return SphereDataset(n=12, d=2, labels=ReluTeacherLabels(k=3))


class ConvexSpec(SpecModel):
    """A certified global optimum of a regularised two-layer net by a convex program, the network
    recovered from its solution, and what nonconvex optimizers reach from random starts beside it."""

    kind: Literal["convex"] = "convex"
    dataset: DatasetSpec = Field(
        default_factory=_default_dataset, description="the data; a held-out test set is not used"
    )
    program: ProgramSpec = Field(default_factory=ReluProgram, validate_default=True)
    loss: Literal["squared", "l1", "huber"] = Field(
        "squared",
        description="squared: 1/2 sum_i r_i^2; l1: sum_i |r_i|; huber: sum_i h(r_i), h(r) = r^2/2 "
        "for |r| <= huber_delta, else huber_delta (|r| - huber_delta/2); r = f(x_i) - y_i",
    )
    huber_delta: float = Field(1.0, gt=0, le=1e3, description="where the huber loss turns linear")
    beta: float = Field(0.01, gt=0, le=1e3, description="regularisation strength (penalty in the program)")
    solver: Literal["clarabel", "scs"] = Field(
        "clarabel", description="clarabel: interior point (accurate); scs: first-order splitting"
    )
    solver_tolerance: float = Field(
        1e-8,
        ge=1e-12,
        le=1e-3,
        description="the solver's gap and feasibility tolerances (absolute and relative)",
    )
    solver_seconds: float = Field(300, gt=0, le=1800, description="time limit of the solver")
    check_tolerance: float = Field(
        1e-6,
        gt=0,
        le=1e-2,
        description="relative tolerance: the recovered net's objective must be within check_tolerance "
        "|optimum| + solver_tolerance of the optimum, a run that close has reached it, and one that "
        "far below it is an error",
    )
    compare: list[ComparisonSpec] = Field(
        default_factory=lambda: [GD(), HeavyBall(momentum=0.9), Nesterov(momentum="schedule")],
        max_length=6,
        description="optimizers that train the nonconvex net on the same objective; `auto` lr: "
        "1/lambda_max of its Hessian (power iteration at the starts and the recovered optimum); "
        "`auto` momentum is rejected (the nonconvex objective has no curvature floor to tune it to); "
        "ggn needs the squared loss, damping > 0 and the full batch; lbfgs runs the replicates one "
        "by one, a step being one iteration",
    )
    width: int = Field(32, ge=1, le=WIDTH_MAX, description="neurons m of the nonconvex nets")
    replicates: int = Field(
        4, ge=1, le=64, description="random starts per optimizer: seeds seed, seed + 1, ..."
    )
    seed: int = seed_field("seed of the first start")
    init_scale: float = Field(
        1.0,
        gt=0,
        le=10,
        description="random starts: rows of W ~ N(0, scale^2 I / d); ReLU output weights ~ N(0, "
        "scale^2 / m), polynomial alpha_j = s_j t_j with s, t ~ N(0, scale / m)",
    )
    start: StartSpec = Field(
        default_factory=RandomStart,
        description="where the nonconvex runs start: random (seeded), the recovered optimum plus "
        "noise, or a net given inline",
    )
    steps: int = Field(5000, ge=1, le=10**6, description="step budget of each nonconvex run")
    max_seconds: float = Field(120, gt=0, le=3600, description="wall-clock budget of one optimizer's runs")
    device: Device = Field("cpu", description="cpu only: the conic solvers run on the CPU")

    model_config = ConfigDict(json_schema_extra={"examples": [CONVEX_EXAMPLE]})

    @field_validator("device")
    @classmethod
    def _cpu_only(cls, device: str) -> str:
        if device != "cpu":
            raise ValueError(
                "convex jobs run on the cpu: Clarabel and SCS have no GPU path and the comparison "
                "nets are small; set device 'cpu'"
            )
        return device

    @field_validator("program")
    @classmethod
    def _fits(cls, program: PolynomialProgram | ReluProgram, info: ValidationInfo) -> ProgramSpec:
        dataset = info.data.get("dataset")
        if dataset is None:
            return program  # the dataset is invalid and says so itself
        n, d = dataset.n, dataset.d
        if isinstance(program, PolynomialProgram):
            _check_sdp(program, n, d)
        else:
            _check_relu(program, n, d)
        return program

    @field_validator("compare")
    @classmethod
    def _trainable(cls, compare: list[ComparisonSpec], info: ValidationInfo) -> list[ComparisonSpec]:
        for index, optimizer in enumerate(compare):
            where = f"compare[{index}] ({optimizer.name})"
            if getattr(optimizer, "momentum", None) == "auto":
                raise ValueError(
                    f"{where}: momentum 'auto' needs a positive curvature floor mu (Polyak's and "
                    "Nesterov's tuning), and the regularised nonconvex objective has none (its minima "
                    "come in flat families); give a momentum in [0, 1) (or 'schedule' for nesterov)"
                )
            if optimizer.name == "ggn":
                if info.data.get("loss") != "squared":
                    raise ValueError(f"{where}: Gauss-Newton needs the squared loss")
                if optimizer.damping == 0:
                    raise ValueError(
                        f"{where}: the Gram of the residual [f - y; sqrt(beta) theta] has more rows than "
                        "rank; set damping > 0 (the step is then Levenberg-Marquardt's)"
                    )
                if optimizer.batch_size is not None:
                    raise ValueError(
                        f"{where}: batch_size must be null (the penalty is not a sum over points)"
                    )
        return compare

    @field_validator("start")
    @classmethod
    def _start_fits(cls, start: RandomStart | RecoveredStart | GivenStart, info: ValidationInfo) -> StartSpec:
        dataset, width, program = (info.data.get(key) for key in ("dataset", "width", "program"))
        if not isinstance(start, GivenStart) or dataset is None or width is None:
            return start  # an invalid dataset or width says so itself
        m, d = len(start.weights), len(start.weights[0])
        if m != width or len(start.outputs) != width:
            raise ValueError(
                f"the given net has {m} rows of weights and {len(start.outputs)} outputs; width is "
                f"{width}: give one row and one output per neuron"
            )
        if d != dataset.d:
            raise ValueError(f"the given rows have {d} numbers; the data are in d = {dataset.d}")
        if isinstance(program, PolynomialProgram):
            zero = [j for j, row in enumerate(start.weights) if not any(row)]
            if zero:
                raise ValueError(
                    f"rows {zero[:5]} of the given weights are zero: the polynomial net uses "
                    "u_j = w_j / |w_j|, so every row must be nonzero"
                )
        return start

    def patterns(self) -> int:
        """Most activation patterns the ReLU program can hold (0 for the SDP)."""
        if not isinstance(self.program, ReluProgram):
            return 0
        return _pattern_count(self.program, pattern_bound(self.dataset.n, self.dataset.d))

    def cost(self) -> Cost:
        """Solve: SOLVER_ITERATIONS x SOLVE_WORK per coefficient of the program (n (d+1)^2 for
        the SDP, 2 P n d over P patterns for ReLU), plus up to P n LPs (LP_WORK each) for an exact
        enumeration. Compare, per optimizer: each step STEP_OVERHEAD plus ~8 n m d flop per start,
        a GGN step also the Jacobian (n + q) x p, its Gram and Cholesky; and HESSIAN_PRODUCTS
        products per start for `auto`. Memory: BYTES_PER_ENTRY per coefficient, the nets, and for GGN
        the Jacobian and Gram of the residual."""
        n, d, m, R = self.dataset.n, self.dataset.d, self.width, self.replicates
        if isinstance(self.program, PolynomialProgram):
            entries = n * (d + 1) ** 2
            flops = SOLVER_ITERATIONS * SOLVE_WORK * entries
        else:
            P = self.patterns()
            entries = 2 * P * n * d
            flops = SOLVER_ITERATIONS * SOLVE_WORK * entries
            if self.program.patterns == "exact":
                flops += P * n * LP_WORK
        p = m * (d + 2)
        net = 8.0 * n * m * d
        for optimizer in self.compare:
            flops += self.steps * _step_flops(optimizer, n, p, R, net)
            if optimizer.name != "lbfgs":  # the others may take an `auto` lr
                flops += HESSIAN_PRODUCTS * (STEP_OVERHEAD + 4 * R * net)
        gram = (n + p) * (n + 2 * p) if any(optimizer.name == "ggn" for optimizer in self.compare) else 0
        memory = BYTES_PER_ENTRY * entries + 8.0 * R * (4 * n * m + 8 * p + gram)
        return Cost(flops=flops, memory_bytes=memory)


def _step_flops(optimizer: ComparisonSpec, n: int, p: int, R: int, net: float) -> float:
    """One comparison step of R starts over p parameters, `net` flop a start's gradient: stacked
    (STEP_OVERHEAD once), a GGN step with the Jacobian (n + p) x p, its Gram and Cholesky; L-BFGS
    one start at a time, LBFGS_EVALUATIONS gradients and the two-loop recursion (4 history p)."""
    if optimizer.name == "lbfgs":
        return R * (LBFGS_EVALUATIONS * (STEP_OVERHEAD + net) + 4.0 * optimizer.history * p)
    extra = 0.0
    if optimizer.name == "ggn":
        rows = n + p
        extra = 2.0 * rows * p * (n + 1) + 2.0 * rows * rows * p + rows**3
    return STEP_OVERHEAD + R * (net + extra)


def _check_sdp(program: PolynomialProgram, n: int, d: int) -> None:
    if program.a == program.b == program.c == 0:
        raise ValueError("the activation a t^2 + b t + c is zero: give a nonzero coefficient")
    if n > SDP_N_MAX or d > SDP_D_MAX or n * (d + 1) ** 2 > SDP_ENTRIES_MAX:
        raise ValueError(
            f"polynomial_sdp is limited to n <= {SDP_N_MAX}, d <= {SDP_D_MAX} and n (d + 1)^2 <= "
            f"{SDP_ENTRIES_MAX} (solves within minutes); this dataset has n = {n}, d = {d}, "
            f"n (d + 1)^2 = {n * (d + 1) ** 2}"
        )


def _pattern_count(program: ReluProgram, bound: int) -> int:
    """Activation patterns the ReLU program holds: all `bound` of them when exact, else at most
    `samples`."""
    return bound if program.patterns == "exact" else min(bound, program.samples)


def _check_relu(program: ReluProgram, n: int, d: int) -> None:
    bound = pattern_bound(n, d)
    if program.patterns == "exact" and bound > EXACT_PATTERNS_MAX:
        raise ValueError(
            f"exact patterns: n = {n} points in d = {d} can have up to {bound} activation patterns, "
            f"more than {EXACT_PATTERNS_MAX}; use fewer points or dimensions, or patterns 'sampled' "
            "(an upper bound on the optimum)"
        )
    patterns = _pattern_count(program, bound)
    if patterns * n * d > RELU_ENTRIES_MAX:
        raise ValueError(
            f"relu_convex is limited to patterns x n x d <= {RELU_ENTRIES_MAX} (solves within "
            f"minutes); up to {patterns} patterns x {n} x {d} = {patterns * n * d}: lower `samples`, "
            "n or d"
        )
