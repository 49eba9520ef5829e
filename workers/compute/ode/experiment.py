"""The `ode` experiment: the continuous-time limits of GD, heavy ball and Nesterov under the
tangent kernel of a dataset (docs/science.md §1), each solved exactly mode by mode and checked
by a numerical integrator, its rate fitted in continuous time, and, when asked, set beside its
discrete method at several step sizes and beside the flows of finite networks.

The residual starts at e(0) = -y under H_inf (the infinite net's mean output is 0) or at
f(x; theta_0) - y under the empirical NTK of that network at init, with e'(0) = 0, and evolves
under K = H (loss 1/2 |f - y|^2) or K = H / n (the mean loss): e' = -K e is gradient flow of that
loss, as in workers/compute/training/theory.py.
"""

import numpy as np
import torch

from schemas.ode import DynamicsSpec, OdeSpec
from schemas.ode_results import DynamicsResult, IntegratorCheck, ModeTrace, OdeResult, ParameterStudy
from workers.compute.datasets import Data, make_data
from workers.compute.device import DTYPES, Clock, resolve_device
from workers.compute.kernels.analytic import analytic_kernel
from workers.compute.kernels.empirical import tangent_kernel
from workers.compute.networks import forward
from workers.compute.ode.discrete import NetworkRuns, discrete_study
from workers.compute.ode.flows import (
    Flow,
    Tick,
    critical_damping,
    flow_of,
    integrate,
    largest_gap,
    mode_factors,
    start_description,
)
from workers.compute.ode.network import describe, network_gap, network_problem
from workers.compute.ode.parameter_space import width_study
from workers.compute.ode.rates import continuous_rate, predicted, time_grid
from workers.compute.progress import Progress
from workers.compute.rates import rounding_floor
from workers.compute.spectrum import eigendecompose
from workers.compute.training.engine import Problem, Start, initial_params, start
from workers.compute.weights import weights_checksum


def kernel_and_start(spec: OdeSpec, data: Data) -> tuple[torch.Tensor, torch.Tensor, str, str | None]:
    """The kernel H (n, n), the initial residual e(0) (n,), a description of the kernel and the
    checksum of the net at init behind it (None for H_inf)."""
    X, y = data.X, data.y
    if spec.kernel == "analytic":
        return analytic_kernel(spec.network, X), -y, f"H_inf: {spec.network.describe()}", None
    assert spec.width is not None  # schemas/ode.py: a width exactly when the kernel is empirical_init
    params = initial_params(spec.network, spec.width, X, spec.seed, spec.initial)
    net = f"width {spec.width}, {origin(spec)}"
    description = f"empirical NTK at init ({net}): {spec.network.describe()}"
    e0 = forward(spec.network, params, X) - y
    return tangent_kernel(spec.network, params, X), e0, description, weights_checksum(params)


def origin(spec: OdeSpec) -> str:
    """Where the finite net's weights at init come from."""
    return "given initial weights" if spec.initial is not None else f"seed {spec.seed}"


def solve_dynamics(
    spec: OdeSpec,
    dynamics: DynamicsSpec,
    spectrum: tuple[torch.Tensor, torch.Tensor],
    K: torch.Tensor,
    e0: torch.Tensor,
    scale: float,
    grid: tuple[np.ndarray, float],
    clock: Clock,
    tick: Tick,
    network: tuple[Problem, Start] | None = None,
) -> DynamicsResult:
    """One dynamics: exact modes on the grid, norms and loss, the integrator against them, the
    continuous rate, the prediction and the discrete runs, with the finite `network` trained
    beside them when given (`tick` hears the long ones)."""
    lam, V = spectrum
    quanta, tau = grid
    t = torch.from_numpy(quanta * tau).to(e0)
    flow, constants = flow_of(dynamics, float(lam[-1]))
    modal = mode_factors(flow, lam, t) * (V.T @ e0)[None, :]  # (T, n): u_i . e(t)
    norm = modal.norm(dim=1)
    loss = (0.5 * scale * norm.double() ** 2).cpu().numpy()
    n = lam.shape[0]
    traces = [
        ModeTrace(index=i % n, eigenvalue=float(lam[i]), residual=modal[:, i].tolist()) for i in spec.modes
    ]
    seconds = clock.lap("exact")
    check = None
    if spec.integrator is not None:
        integrated, evaluations = integrate(flow, K, e0, t, spec.integrator, tick)
        gap = largest_gap(modal @ V.T, integrated)
        check = IntegratorCheck(
            method=spec.integrator.method,
            rtol=spec.integrator.rtol,
            atol=spec.integrator.atol,
            step_size=spec.integrator.step_size,
            evaluations=evaluations,
            max_difference=gap,
            relative_difference=gap / float(e0.norm()),
            residual_norm=integrated.norm(dim=1).tolist(),
            start=start_description(flow),
            seconds=clock.lap("integrator"),
        )
    fit = continuous_rate(quanta, tau, loss, rounding_floor(torch.finfo(e0.dtype).eps, float(loss[0])))
    clock.lap("fit")
    study = None
    if spec.discrete is not None:
        unit = float(lam[0]) if spec.discrete.unit == "1/lambda_max" else 1.0
        lrs = [lr / unit for lr in spec.discrete.lrs]
        runs = None
        if network is not None:
            runs = NetworkRuns(
                describe(network[0].network, network[0].width, origin(spec)),
                lambda lr, record: network_gap(flow, *network, lr, record, (lam, V), tick),
                network[1].checksums[0],
            )
        study = discrete_study(flow, K, lam, V, e0, lrs, quanta * tau, tick, runs)
        clock.lap("discrete")
    return DynamicsResult(
        name=flow.name,
        equation=flow.equation,
        parameters=constants,
        residual_norm=norm.tolist(),
        loss=loss.tolist(),
        modes=traces,
        integrated=check,
        fit=fit,
        predicted=predicted(flow, float(lam[-1]), fit),
        discrete=study,
        seconds=seconds,
    )


def parameter_studies(
    spec: OdeSpec, data: Data, scale: float, spectrum: tuple[torch.Tensor, torch.Tensor], progress: Progress
) -> list[ParameterStudy]:
    """Each flow of spec.parameter_space over its widths, against K = scale H_inf (`spectrum`
    already is its eigendecomposition when the job's kernel is the analytic one)."""
    study = spec.parameter_space
    if study is None:
        return []
    limit = (
        spectrum
        if spec.kernel == "analytic"
        else eigendecompose(scale * analytic_kernel(spec.network, data.X))
    )
    studies = []
    for index, name in enumerate(study.dynamics):
        damping = (
            critical_damping(float(limit[0][-1]), "parameter_space")
            if study.gamma == "critical"
            else study.gamma
        )
        flow = Flow("gd_flow", 1) if name == "gd_flow" else Flow("heavy_ball", 2, gamma=damping)

        def report(fraction: float, message: str, index: int = index) -> None:
            progress(0.7 + 0.3 * (index + fraction) / len(study.dynamics), message)

        studies.append(
            width_study(flow, spec.network, data.X, data.y, scale, limit, study, spec.seed, report)
        )
    return studies


def run_ode(spec: OdeSpec, progress: Progress) -> OdeResult:
    """Kernel and spectrum once; then every dynamics; then, when asked, finite networks."""
    device = resolve_device(spec.device)
    clock = Clock(device)
    progress(0.0, "making data and the kernel")
    data = make_data(spec.dataset, DTYPES[spec.dtype], device)
    H, e0, description, checksum = kernel_and_start(spec, data)
    n = H.shape[0]
    scale = 1.0 if spec.loss == "sum" else 1.0 / n
    K = scale * H
    if not (bool(torch.isfinite(K).all()) and float(e0.norm()) > 0):
        raise ValueError("the kernel is not finite or the initial residual is zero: check the dataset")
    clock.lap("kernel")
    progress(0.05, f"eigendecomposition of a {n}x{n} kernel")
    lam, V = eigendecompose(K)
    clock.lap("spectrum")
    grid = time_grid(spec.grid)
    network = None
    if spec.discrete is not None and spec.discrete.network_width is not None:
        width = spec.discrete.network_width
        problem = network_problem(spec.network, width, data.X, data.y, scale, V, spec.initial)
        network = (problem, start(problem, [spec.seed]))  # one initialisation for every dynamics and lr
    results = []
    for index, dynamics in enumerate(spec.dynamics):
        fraction = 0.1 + 0.6 * index / len(spec.dynamics)
        progress(fraction, f"{dynamics.name}: exact solution")

        def tick(message: str, fraction: float = fraction) -> None:
            progress(fraction, message)

        results.append(solve_dynamics(spec, dynamics, (lam, V), K, e0, scale, grid, clock, tick, network))
    studies = None
    if spec.parameter_space is not None:
        studies = parameter_studies(spec, data, scale, (lam, V), progress)
        clock.lap("parameter_space")
    progress(1.0, "done")
    return OdeResult(
        kernel=description,
        dtype=spec.dtype,
        device=str(device),
        n=n,
        d=data.X.shape[1],
        loss=spec.loss,
        lambda_min=float(lam[-1]),
        lambda_max=float(lam[0]),
        t=(grid[0] * grid[1]).tolist(),
        initial_loss=float(0.5 * scale * e0.double().norm() ** 2),
        initial_checksum=checksum,
        dynamics=results,
        parameter_space=studies,
        seconds=clock.seconds,
    )
