"""The real network beside the discrete function-space runs: the finite net trained through the
training engine (workers/compute/training/engine.py) with the optimizer each ODE is the limit of, at
the same step size, recorded at the steps that map to the ODE's grid times.

In the NTK regime its residual e_k = f(x; theta_k) - y follows the linear recursion of
ode_discrete.py with the net's own tangent kernel (Du et al. 2019; Bu, Xu & Chen 2021), so its
gap to the ODE on H_inf (started from the net's own e_0) has two parts: the discretisation,
which shrinks with lr like the function-space gap, and the finite width, which does not.
"""

import math

import numpy as np
import torch

from schemas.networks import NetworkSpec
from schemas.weights import InitialWeights
from workers.compute.networks import forward
from workers.compute.ode.flows import Flow, Tick, exact_on
from workers.compute.training.engine import Problem, Start, train

NETWORK_SECONDS = 3600.0
"""Wall-clock budget of one network run (the job's own limit applies too)."""


def network_gap(
    flow: Flow,
    problem: Problem,
    begin: Start,
    lr: float,
    record: np.ndarray,
    spectrum: tuple[torch.Tensor, torch.Tensor],
    tick: Tick,
) -> float:
    """max_k | |e_k|_2 - |e(k dt)|_2 | / |e_0|_2 for the net trained at `lr` from `begin` (one
    seed's initialisation, shared by every lr), the ODE solved exactly on K = scale H (`spectrum`: its eigenpairs) from the
    net's e_0. record: increasing steps from 0. Raises ValueError when the run diverges."""
    lam, V = spectrum
    name, hyper = flow.optimizer(lr)
    grid = [int(step) for step in record]
    [run] = train(
        problem,
        name,
        hyper,
        begin,
        0.0,
        NETWORK_SECONDS,
        grid,
        lambda step, _losses: tick(f"{flow.name}: network, lr = {lr:.3g}, step {step} of {grid[-1]}"),
    )
    losses = [math.inf if loss is None else loss for loss in run.record["train_loss"]]
    if run.status == "diverged" or len(losses) < len(grid) or not all(map(math.isfinite, losses)):
        raise ValueError(f"{flow.name}: the network at lr = {lr:.4g} diverged; use smaller step sizes")
    e0 = forward(problem.network, run.initial, problem.X) - problem.y
    dt = flow.time_per_step(lr)
    times = torch.tensor(grid, dtype=e0.dtype, device=e0.device) * dt
    ode_norms = exact_on(lam, V, flow, e0, times).norm(dim=1)
    net_norms = torch.tensor(losses, dtype=e0.dtype, device=e0.device).mul(2.0 / problem.scale).sqrt()
    return float((net_norms - ode_norms).abs().max() / e0.norm())


def network_problem(
    network: NetworkSpec,
    width: int,
    X: torch.Tensor,
    y: torch.Tensor,
    scale: float,
    V: torch.Tensor,
    initial: InitialWeights | None = None,
) -> Problem:
    """The training problem of the finite net on the job's data and loss scale, from the
    `initial` weights when given."""
    return Problem(network, width, X, y, None, None, scale, V[:, 0], V[:, -1], False, False, initial)


def describe(network: NetworkSpec, width: int, origin: str) -> str:
    """origin: where its weights at init come from ("seed 0", "given initial weights")."""
    return f"{network.describe()}, width {width}, {origin}, trained by the training engine"
