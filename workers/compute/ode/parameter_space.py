"""Flows of finite networks on their weights, against the function-space flow on H_inf.

For the loss L(theta) = (s/2) |f(theta) - y|^2 (s = 1, or 1/n for the mean loss):
- gradient flow:    theta' = -grad L(theta)
- heavy-ball flow:  theta'' + gamma theta' + grad L(theta) = 0, theta'(0) = 0.
The residual e = f - y then obeys e' = -s H_m(t) e (and e'' + gamma e' + s H_m(t) e = (dJ/dt)
theta', a term of the kernel's motion), with H_m(t) the tangent kernel of width m. As m grows
H_m(t) -> H_inf uniformly on bounded times (Jacot et al. 2018; Du et al. 2019, deviations
O(m^-1/2)), so e(t) approaches the function-space solution with K = s H_inf started from the
same e(0) = f(theta_0) - y. Weights are integrated with torchdiffeq, gradients by autograd.
"""

import numpy as np
import torch

from schemas.networks import NetworkSpec
from schemas.ode import IntegratorSpec, ParameterSpaceSpec
from schemas.ode_results import ParameterStudy, WidthGap
from workers.compute.networks import Params, forward, trained_names
from workers.compute.ode.flows import Flow, Tick, exact_on, largest_gap, no_tick, solve
from workers.compute.progress import Progress
from workers.compute.stats import log_slope, spread
from workers.compute.training.engine import initial_params


class NetworkLoss:
    """L(theta) = (scale/2) |f(theta) - y|^2 of one network over the trained parameters."""

    def __init__(
        self, network: NetworkSpec, params: Params, X: torch.Tensor, y: torch.Tensor, scale: float
    ) -> None:
        self.network, self.X, self.y, self.scale = network, X, y, scale
        self.names = trained_names(network, params)
        self.frozen = {name: value for name, value in params.items() if name not in self.names}

    def residual(self, trained: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """f(theta) - y: (n,)."""
        params = {**self.frozen, **dict(zip(self.names, trained, strict=True))}
        return forward(self.network, params, self.X) - self.y

    def gradient(self, trained: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        """grad L = scale J^T (f - y), by reverse-mode autograd on detached leaves."""
        with torch.enable_grad():
            leaves = tuple(value.detach().requires_grad_() for value in trained)
            residual = self.residual(leaves)
            loss = 0.5 * self.scale * (residual * residual).sum()
            return torch.autograd.grad(loss, leaves)


def parameter_flow(
    flow: Flow,
    loss: NetworkLoss,
    trained: tuple[torch.Tensor, ...],
    t: torch.Tensor,
    spec: IntegratorSpec,
    tick: Tick = no_tick,
) -> tuple[torch.Tensor, int]:
    """The flow on the weights from `trained` at rest, the residual f - y at each time and the
    number of gradient evaluations. t: (T,) from 0 -> (T, n)."""
    count = len(trained)

    def gradient_flow(_t: torch.Tensor, state: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        return tuple(-g for g in loss.gradient(state))

    def heavy_ball_flow(_t: torch.Tensor, state: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        weights, velocity = state[:count], state[count:]
        gamma = float(flow.gamma or 0.0)
        pull = loss.gradient(weights)
        return velocity + tuple(-gamma * v - g for v, g in zip(velocity, pull, strict=True))

    if flow.order == 1:
        path, evaluations = solve(flow.name, gradient_flow, trained, t, spec, tick)
    else:
        start = trained + tuple(torch.zeros_like(value) for value in trained)
        path, evaluations = solve(flow.name, heavy_ball_flow, start, t, spec, tick)
    residuals = torch.stack([loss.residual(tuple(part[j] for part in path[:count])) for j in range(len(t))])
    return residuals, evaluations


def width_study(
    flow: Flow,
    network: NetworkSpec,
    X: torch.Tensor,
    y: torch.Tensor,
    scale: float,
    limit: tuple[torch.Tensor, torch.Tensor],
    spec: ParameterSpaceSpec,
    seed: int,
    progress: Progress,
) -> ParameterStudy:
    """Per width m and replicate (seed + r): the finite net's flow against the exact
    function-space flow on K = scale H_inf (limit = its eigenvalues and eigenvectors) from the
    same e(0); gap = max_t |e_m(t) - e_inf(t)|_2 / |e_m(0)|_2; exponent = slope of log mean gap
    against log m."""
    lam, V = limit
    t = torch.linspace(0.0, spec.t_max, spec.points, dtype=X.dtype, device=X.device)
    rows = []
    for index, m in enumerate(spec.widths):
        gaps, evaluations = [], 0
        for replicate in range(spec.replicates):
            fraction = (index + replicate / spec.replicates) / len(spec.widths)
            where = f"{flow.name} in parameter space: width {m}, seed {seed + replicate}"
            progress(fraction, where)

            def tick(message: str, fraction: float = fraction, where: str = where) -> None:
                progress(fraction, f"{where}: {message}")

            params = initial_params(network, m, X, seed + replicate)
            loss = NetworkLoss(network, params, X, y, scale)
            residuals, count = parameter_flow(
                flow, loss, tuple(params[name] for name in loss.names), t, spec.integrator, tick
            )
            limit_path = exact_on(lam, V, flow, residuals[0], t)
            gaps.append(largest_gap(residuals, limit_path) / float(residuals[0].norm()))
            evaluations += count
        if not np.all(np.isfinite(gaps)):
            raise ValueError(f"{flow.name} of the width-{m} network is not finite: shorten t_max")
        gap = spread(gaps)
        rows.append(
            WidthGap(
                width=m,
                replicates=spec.replicates,
                gap_mean=gap.mean,
                gap_std=gap.std,
                evaluations=evaluations,
            )
        )
    return ParameterStudy(
        dynamics="gd_flow" if flow.order == 1 else "heavy_ball",
        equation="theta' = -grad L" if flow.order == 1 else f"theta'' + {flow.gamma:.6g} theta' + grad L = 0",
        rows=rows,
        width_exponent=log_slope([row.width for row in rows], [row.gap_mean for row in rows]),
    )
