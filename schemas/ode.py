"""The `ode` experiment: the continuous-time limits of GD, heavy ball and Nesterov in function
space (Bu, Xu, Chen, AISTATS 2021; docs/science.md §1), solved exactly mode by mode and by a
numerical integrator, set beside the discrete iterations and beside the finite network's own
flow in parameter space."""

import math
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from schemas.common import Device, SpecModel, device_field, seed_field
from schemas.costs import EVALUATION_OVERHEAD, ITERATION_OVERHEAD, Cost
from schemas.datasets import DatasetSpec, SphereDataset, held_out_count
from schemas.degeneracy import singular_kernel, zero_inputs, zero_labels
from schemas.networks import NetworkSpec, TwoLayerNet, parameter_count
from schemas.optimizers import LearningRate, gradient_step_flops
from schemas.weights import InitialWeights, check_initial

ODE_N_MAX = 4096
"""Largest training set: the exact solution needs the full eigendecomposition (~10 n^3)."""
KERNEL_WIDTH_MAX = 2**16
PARAMETER_WIDTH_MAX = 16384
T_MAX = 1e6
GRID_POINTS_MAX = 2048
LOG_SPAN_MAX = 1e6
"""Largest t_max / t_min of a log grid (the grid is a set of integer multiples of t_max / 2^24)."""
STEPS_MAX = 10**6
"""Most steps of one fixed-step integration or one discrete run."""
EVALUATIONS_MAX = 10**6
"""Most vector-field evaluations of one adaptive integration."""
ADAPTIVE = ("dopri5", "dopri8", "bosh3", "adaptive_heun")
FIXED = ("rk4", "midpoint", "euler")

Damping = StepSize = LearningRate
"""A positive rate or time step up to 1e6, the same bounds as an optimizer's learning rate."""


# ---------------------------------------------------------------------------------------------
# the dynamics, in function space: e = u - y, K the kernel that governs the residual
# ---------------------------------------------------------------------------------------------


class GradientFlow(SpecModel):
    """e' = -K e: the limit of GD with step lr, time t = k lr."""

    name: Literal["gd_flow"] = "gd_flow"


class HeavyBallFlow(SpecModel):
    """e'' + gamma e' + K e = 0, e'(0) = 0: the limit of heavy ball (Polyak 1964), time
    t = k sqrt(lr), gamma = (1 - momentum) / sqrt(lr). Give gamma, or a discrete (lr, momentum)
    and gamma follows; `critical`: gamma = 2 sqrt(lambda_min), the best uniform rate
    sqrt(lambda_min) (docs/science.md §1)."""

    name: Literal["heavy_ball"] = "heavy_ball"
    gamma: Damping | Literal["critical"] | None = Field(
        None,
        description="damping gamma > 0 (1/time); critical: 2 sqrt(lambda_min); left out: critical, "
        "unless lr and momentum set it (then it stays null)",
    )
    lr: StepSize | None = Field(None, description="discrete step eta; with momentum, sets gamma")
    momentum: float | None = Field(
        None, ge=0, lt=1, description="discrete momentum beta in [0, 1); gamma = (1 - beta)/sqrt(eta)"
    )

    @model_validator(mode="before")
    @classmethod
    def _critical_by_default(cls, data: Any) -> Any:
        """gamma defaults to `critical` only when no (lr, momentum) sets it, so that the stored
        dump (gamma null beside lr and momentum) validates again as the same spec."""
        if isinstance(data, dict) and data.get("gamma") is None and data.get("lr") is None:
            return {**data, "gamma": "critical"}
        return data

    @model_validator(mode="after")
    def _one_way(self) -> "HeavyBallFlow":
        if (self.lr is None) != (self.momentum is None):
            raise ValueError("give lr and momentum together (they set gamma), or neither")
        if self.lr is not None and self.gamma is not None:
            raise ValueError("give gamma, or a discrete lr and momentum, not both")
        return self


class NesterovFlow(SpecModel):
    """e'' + (r/t) e' + K e = 0, e(0) = e0, e'(0) = 0: the limit of Nesterov's method with
    momentum (k - 1)/(k + r - 1), time t = k sqrt(lr) (Su, Boyd, Candes 2016; r = 3 is
    (k - 1)/(k + 2)). Each mode decays like t^(-r/2), the loss like t^-r."""

    name: Literal["nesterov"] = "nesterov"
    r: float = Field(3.0, gt=0, le=50, description="damping r/t; 3 is Nesterov's (k - 1)/(k + 2)")


class NesterovStronglyConvexFlow(SpecModel):
    """e'' + 2 sqrt(mu) e' + K e = 0: the (low-resolution) limit of Nesterov's method with
    constant momentum (1 - sqrt(mu lr))/(1 + sqrt(mu lr)), time t = k sqrt(lr)."""

    name: Literal["nesterov_sc"] = "nesterov_sc"
    mu: Damping | Literal["lambda_min"] = Field(
        "lambda_min", description="strong convexity mu > 0 (the damping is 2 sqrt(mu))"
    )


DynamicsSpec = Annotated[
    GradientFlow | HeavyBallFlow | NesterovFlow | NesterovStronglyConvexFlow, Field(discriminator="name")
]


# ---------------------------------------------------------------------------------------------
# the time grid, the integrator, the discrete runs, the finite networks
# ---------------------------------------------------------------------------------------------


class TimeGrid(SpecModel):
    """Times at which every trajectory is reported: t = 0, then `points - 1` times up to t_max,
    evenly spaced or log-spaced from t_min (each an integer multiple of a small time quantum,
    so that rates can be fitted exactly; repeats after rounding are dropped)."""

    t_max: float = Field(
        100.0,
        gt=0,
        le=T_MAX,
        description="last time, in ODE time (t = k lr for GD, k sqrt(lr) for the momentum methods); "
        "the slowest mode needs a few 1/lambda_min (gd_flow) or 1/sqrt(lambda_min) (the others)",
    )
    points: int = Field(256, ge=8, le=GRID_POINTS_MAX, description="number of times, t = 0 included")
    spacing: Literal["linear", "log"] = "log"
    t_min: float | None = Field(
        None, gt=0, description="first positive time of a log grid; null: t_max / 1000"
    )

    @model_validator(mode="after")
    def _span(self) -> "TimeGrid":
        if self.t_min is not None:
            if self.spacing != "log":
                raise ValueError("t_min applies to a log grid only")
            if not self.t_min < self.t_max:
                raise ValueError(f"t_min = {self.t_min} must be below t_max = {self.t_max}")
            if self.t_max / self.t_min > LOG_SPAN_MAX:
                raise ValueError(
                    f"t_max / t_min is at most {LOG_SPAN_MAX:g}, got {self.t_max / self.t_min:.3g}"
                )
        return self


class IntegratorSpec(SpecModel):
    """The numerical integrator (torchdiffeq's odeint) run beside the exact solution."""

    method: Literal["dopri5", "dopri8", "bosh3", "adaptive_heun", "rk4", "midpoint", "euler"] = Field(
        "dopri5",
        description="adaptive (dopri5, dopri8, bosh3, adaptive_heun) or fixed-step (rk4, midpoint, euler)",
    )
    rtol: float = Field(1e-9, ge=1e-13, le=1e-2, description="relative tolerance (adaptive methods)")
    atol: float = Field(1e-12, ge=1e-16, le=1e-2, description="absolute tolerance (adaptive methods)")
    step_size: StepSize | None = Field(None, description="time step of a fixed-step method (required there)")

    @model_validator(mode="after")
    def _step(self) -> "IntegratorSpec":
        if self.method in FIXED and self.step_size is None:
            raise ValueError(f"the fixed-step method {self.method} needs a step_size")
        if self.method in ADAPTIVE and self.step_size is not None:
            raise ValueError(f"{self.method} chooses its own steps: leave step_size out, set rtol/atol")
        return self

    def evaluations(self, t_max: float, frequency: float) -> float:
        """Estimated vector-field evaluations up to t_max: a fixed step's count times its stages,
        or an explicit adaptive method held to about 3/frequency per step by stability."""
        if self.step_size is not None:
            return 4.0 * t_max / self.step_size
        return 8.0 * max(100.0, t_max * frequency / 3.0)


class DiscreteSpec(SpecModel):
    """Run each dynamics' discrete method in function space (the linearised iteration of the NTK
    regime) at several step sizes, map step k to ODE time (t = k lr for GD, k sqrt(lr) for the
    momentum methods) and measure the gap to the exact ODE solution: gd_flow <- GD;
    heavy_ball <- heavy ball with momentum 1 - gamma sqrt(lr) (gamma held fixed); nesterov <-
    momentum (k - 1)/(k + r - 1); nesterov_sc <- momentum (1 - sqrt(mu lr))/(1 + sqrt(mu lr))."""

    lrs: list[StepSize] = Field(
        default_factory=lambda: [0.1, 0.03, 0.01],
        min_length=2,
        max_length=8,
        description="step sizes, in units of `unit`; two or more give the order of the gap in lr",
    )
    unit: Literal["1/lambda_max", "absolute"] = Field(
        "1/lambda_max", description="lrs as multiples of 1/lambda_max (GD is stable below 2), or as is"
    )
    network_width: int | None = Field(
        None,
        ge=1,
        le=PARAMETER_WIDTH_MAX,
        description="also train the finite network of this width (seed `seed`) through the training "
        "engine at each lr with the same optimizer, and report the gap of its residual norm to the "
        "ODE's from the network's own e(0); null: function space only",
    )


class ParameterSpaceSpec(SpecModel):
    """Gradient flow (and heavy-ball flow) of finite networks on their weights, integrated with
    torchdiffeq from `replicates` seeded initialisations per width, against the function-space
    flow on H_inf from the same initial residual: the largest gap on a linear grid up to t_max
    should shrink like m^-1/2."""

    widths: list[Annotated[int, Field(ge=1, le=PARAMETER_WIDTH_MAX)]] = Field(
        default_factory=lambda: [256, 1024, 4096], min_length=2, max_length=6, description="widths m"
    )
    replicates: int = Field(2, ge=1, le=8, description="initialisations per width: seeds seed, seed + 1, ...")
    dynamics: list[Literal["gd_flow", "heavy_ball"]] = Field(
        default_factory=lambda: ["gd_flow"], min_length=1, max_length=2
    )
    gamma: Damping | Literal["critical"] = Field(
        "critical", description="damping of the heavy-ball flow; critical: 2 sqrt(lambda_min(H_inf))"
    )
    t_max: float = Field(5.0, gt=0, le=1e3, description="last time of the comparison")
    points: int = Field(32, ge=2, le=256, description="evenly spaced times, t = 0 included")
    integrator: IntegratorSpec = Field(
        default_factory=lambda: IntegratorSpec(method="rk4", step_size=0.05),
        description="ReLU's kinks make the gradient jump as neurons cross their activation "
        "boundaries, so adaptive methods shrink their steps at every crossing; a fixed rk4 step "
        "costs far less, and halving it moves the gap by under 1e-4 (the gap is ~m^-1/2)",
    )


# ---------------------------------------------------------------------------------------------
# the experiment
# ---------------------------------------------------------------------------------------------

ODE_EXAMPLE = {
    "kind": "ode",
    "dataset": {"name": "sphere", "n": 32, "d": 8, "seed": 0},
    "network": {"name": "two_layer", "activation": "relu", "trained": "first"},
    "dynamics": [{"name": "gd_flow"}, {"name": "heavy_ball"}, {"name": "nesterov"}],
    "grid": {"t_max": 200.0, "points": 200, "spacing": "log"},
    "integrator": {"method": "dopri5", "rtol": 1e-9, "atol": 1e-12},
    "discrete": {"lrs": [0.1, 0.03, 0.01], "unit": "1/lambda_max"},
}


class OdeSpec(SpecModel):
    """Function-space ODEs of GD, heavy ball and Nesterov under the tangent kernel of a dataset,
    exact and integrated; optionally the discrete methods and finite networks beside them."""

    kind: Literal["ode"] = "ode"
    dataset: DatasetSpec = Field(default_factory=SphereDataset)
    network: NetworkSpec = Field(default_factory=TwoLayerNet)
    kernel: Literal["analytic", "empirical_init"] = Field(
        "analytic",
        description="analytic: H_inf, from e(0) = -y (the infinite net's mean output 0); "
        "empirical_init: the NTK of a seeded network of `width` at init, from e(0) = f(x; theta_0) - y",
    )
    width: int | None = Field(None, ge=1, le=KERNEL_WIDTH_MAX, description="width m for empirical_init")
    seed: int = seed_field(
        "seed of the network at init (empirical_init, discrete.network_width; unless `initial` gives "
        "its weights) and of parameter_space's first replicate"
    )
    loss: Literal["sum", "mean"] = Field(
        "sum", description="1/2 sum_i (f - y)^2 (K = H), or divided by n (K = H / n)"
    )
    dynamics: list[DynamicsSpec] = Field(
        default_factory=lambda: [GradientFlow(), HeavyBallFlow(), NesterovFlow()], min_length=1, max_length=8
    )
    grid: TimeGrid = Field(default_factory=TimeGrid)
    integrator: IntegratorSpec | None = Field(
        default_factory=IntegratorSpec, description="null: the exact spectral solution only"
    )
    modes: list[Annotated[int, Field(ge=-ODE_N_MAX, lt=ODE_N_MAX)]] = Field(
        default_factory=lambda: [0, -1],
        max_length=16,
        description="eigen-directions whose residual is reported: indices into the spectrum sorted "
        "largest first, negative from the bottom (0: lambda_max, -1: lambda_min)",
    )
    discrete: DiscreteSpec | None = Field(None, description="also run the discrete methods")
    parameter_space: ParameterSpaceSpec | None = Field(None, description="also integrate finite networks")
    initial: InitialWeights | None = Field(
        None,
        description="the finite net's weights at init, by parameter name (InitialWeights), instead of "
        "the seed's: the net of the empirical_init kernel and the net trained beside the discrete runs "
        "(discrete.network_width), one net of one width; not with parameter_space (seeded nets of "
        "several widths); null: drawn from `seed`",
    )
    dtype: Literal["float64", "float32"] = "float64"
    device: Device = device_field()

    model_config = ConfigDict(json_schema_extra={"examples": [ODE_EXAMPLE]})

    @property
    def n_train(self) -> int:
        return self.dataset.n - held_out_count(self.dataset.n, self.dataset.test_fraction)

    @field_validator("initial")
    @classmethod
    def _initial_fits(cls, initial: InitialWeights | None, info: ValidationInfo) -> InitialWeights | None:
        before = ("dataset", "network", "kernel", "width", "discrete", "parameter_space")
        if initial is None or any(key not in info.data for key in before):
            return initial  # an invalid field says why itself
        if info.data["parameter_space"] is not None:
            raise ValueError(
                "initial weights are one net of one width, parameter_space compares seeded nets of "
                "several widths: leave one of them out"
            )
        width = info.data["width"] if info.data["kernel"] == "empirical_init" else None
        discrete = info.data["discrete"]
        widths = {width, None if discrete is None else discrete.network_width} - {None}
        if not widths:
            raise ValueError(
                "initial weights need a finite net: kernel 'empirical_init' with a width, or "
                "discrete.network_width"
            )
        if len(widths) > 1:
            raise ValueError(
                f"initial weights are one net: width {width} and discrete.network_width "
                f"{discrete.network_width} must be equal"
            )
        check_initial(initial, info.data["network"], info.data["dataset"].d, widths.pop())
        return initial

    @model_validator(mode="after")
    def _sizes(self) -> "OdeSpec":
        if self.n_train > ODE_N_MAX:
            raise ValueError(
                f"the exact solution needs at most {ODE_N_MAX} training points, got {self.n_train}"
            )
        for index in self.modes:
            if not -self.n_train <= index < self.n_train:
                raise ValueError(f"mode {index} is outside the spectrum of {self.n_train} training points")
        return self

    @model_validator(mode="after")
    def _trainable(self) -> "OdeSpec":
        if self.discrete is None or self.discrete.network_width is None:
            return self
        for dynamics in self.dynamics:
            if isinstance(dynamics, NesterovFlow) and dynamics.r != 3:
                raise ValueError(
                    f"discrete.network_width: the training engine's Nesterov schedule is (k-1)/(k+2), "
                    f"the limit of r = 3, not r = {dynamics.r:g}"
                )
        return self

    @model_validator(mode="after")
    def _kernel(self) -> "OdeSpec":
        if self.kernel == "analytic" and not self.network.analytic:
            raise ValueError(f"the {self.network.activation} net has no H_inf: use kernel 'empirical_init'")
        if (self.kernel == "empirical_init") != (self.width is not None):
            raise ValueError("give a width exactly when the kernel is 'empirical_init'")
        wants_limit = self.kernel == "analytic" or self.parameter_space is not None
        if wants_limit and self.network.parameterization != "ntk":
            raise ValueError("H_inf is the limit of the ntk parameterization only")
        if self.parameter_space is not None and not self.network.analytic:
            raise ValueError("the parameter-space comparison needs H_inf: choose an analytic network")
        if (reason := zero_inputs(self.dataset)) is not None:
            raise ValueError(reason)
        if self.kernel == "analytic" and (reason := zero_labels(self.dataset)) is not None:
            raise ValueError(f"{reason}: the residual starts at e(0) = -y = 0")
        needing = self._lambda_min_users()
        if needing and (reason := singular_kernel(self.dataset, self.network)) is not None:
            raise ValueError(
                f"{reason}; {', '.join(needing)} need lambda_min > 0: give the damping explicitly"
            )
        return self

    def _lambda_min_users(self) -> list[str]:
        """The dynamics (and the parameter-space study) whose damping comes from lambda_min."""
        users = [
            f"{d.name} (dynamics {i})"
            for i, d in enumerate(self.dynamics)
            if (isinstance(d, HeavyBallFlow) and d.gamma == "critical")
            or (isinstance(d, NesterovStronglyConvexFlow) and d.mu == "lambda_min")
        ]
        study = self.parameter_space
        if study is not None and "heavy_ball" in study.dynamics and study.gamma == "critical":
            users.append("parameter_space (critical damping)")
        return users

    @model_validator(mode="after")
    def _integrator(self) -> "OdeSpec":
        integrator = self.integrator
        if integrator is None:
            return self
        if self.dtype == "float32" and integrator.rtol < 1e-6:
            raise ValueError("in float32 the integrator's rtol must be at least 1e-6")
        if integrator.step_size is not None and self.grid.t_max / integrator.step_size > STEPS_MAX:
            raise ValueError(f"t_max / step_size is over {STEPS_MAX} steps: raise the step size")
        return self

    def _lambda_bound(self) -> float:
        """An upper bound on lambda_max(K) for inputs of norm about 1: trace(H) <= n depth / 2 (the
        NTK diagonal of a depth-L ReLU net with every layer trained is L |x|^2 / 2, less when
        fewer layers are), times kappa^2 for the two-layer net, divided by n for the mean loss."""
        n, depth = self.n_train, self.network.depth
        scale = self.network.kappa**2 if isinstance(self.network, TwoLayerNet) else 1.0
        return n * depth * scale / 2 / (n if self.loss == "mean" else 1.0)

    def cost(self) -> Cost:
        """Kernel (~n^2 d, ~n^2 d m at init) and one eigendecomposition (~10 n^3); per dynamics the
        exact solution on the grid (~T n^2 to return to the data basis), the integrator (~2 n^2
        per evaluation, its count estimated from stability, `IntegratorSpec.evaluations`), the
        discrete runs (~2 n^2 per step plus ITERATION_OVERHEAD, steps from the lambda_max bound, which
        for GD at lr = c/lambda_max overcounts by trace/lambda_max; ~6 n p more per step when a
        finite network is trained beside them), and per finite network ~6 n p per evaluation;
        EVALUATION_OVERHEAD per evaluation."""
        n, d, T = self.n_train, self.dataset.d, self.grid.points
        big = self._lambda_bound()
        flops = 2.0 * n * n * d + 10.0 * n**3
        if self.kernel == "empirical_init" and self.width is not None:
            flops += 6.0 * n * n * self.width * self.network.depth
        evaluation, step = 2.0 * n * n + EVALUATION_OVERHEAD, 2.0 * n * n + ITERATION_OVERHEAD
        for dynamics in self.dynamics:
            flops += 4.0 * T * n * n
            frequency = big if dynamics.name == "gd_flow" else math.sqrt(big)
            if self.integrator is not None:
                flops += self.integrator.evaluations(self.grid.t_max, frequency) * evaluation
            if self.discrete is not None:
                steps = self._discrete_steps(self.discrete, dynamics.name, big)
                flops += steps * step
                if self.discrete.network_width is not None:
                    p = parameter_count(self.network, d, self.discrete.network_width)
                    flops += steps * gradient_step_flops(n, p)
        memory = 8.0 * (6 * n * n + 8 * T * n + 2 * n * d)
        if self.kernel == "empirical_init" and self.width is not None:
            memory += 8.0 * 4 * n * self.width * self.network.depth
        if self.parameter_space is not None:
            extra, extra_memory = self._parameter_cost(self.parameter_space, n, d, big)
            flops += extra
            memory = max(memory, extra_memory)
        return Cost(flops=flops, memory_bytes=memory)

    def _discrete_steps(self, discrete: DiscreteSpec, name: str, big: float) -> float:
        """Steps of all discrete runs of one dynamics up to t_max: t_max / lr for GD, t_max /
        sqrt(lr) for the momentum methods, lr = fraction / lambda_max at the bound."""
        total = 0.0
        for value in discrete.lrs:
            lr = value / big if discrete.unit == "1/lambda_max" else value
            total += self.grid.t_max / (lr if name == "gd_flow" else math.sqrt(lr))
        return total

    def _parameter_cost(self, study: ParameterSpaceSpec, n: int, d: int, big: float) -> tuple[float, float]:
        """Per width, replicate and flow: evaluations times ~6 n p (forward and backward)."""
        depth, flops, memory = self.network.depth, 0.0, 0.0
        for m in study.widths:
            p = parameter_count(self.network, d, m)
            for name in study.dynamics:
                frequency = big if name == "gd_flow" else math.sqrt(big)
                evaluations = study.integrator.evaluations(study.t_max, frequency)
                flops += study.replicates * evaluations * (6.0 * n * p + EVALUATION_OVERHEAD)
            memory = max(memory, 8.0 * (12 * p + 4 * depth * n * m + 6 * n * n))
        return flops, memory
