"""The discrete methods behind each ODE, run in function space, against the ODE at equal times.

In the NTK regime the residual of GD, heavy ball and Nesterov follows a linear recursion in the
kernel K (workers/compute/training/theory.py, docs/science.md §1). With e_{-1} = e_0 (start at
rest) and A = I - lr K:
- GD:               e_{k+1} = A e_k                                          t = k lr
- heavy ball:       e_{k+1} = A e_k + beta (e_k - e_{k-1}), beta = 1 - gamma sqrt(lr)   t = k sqrt(lr)
- Nesterov:         e_{k+1} = A (e_k + b_k (e_k - e_{k-1}))                  t = k sqrt(lr)
  with b_k = (k - 1)/(k + r - 1) (r = 3: (k - 1)/(k + 2), Su, Boyd, Candes 2016) for `nesterov`,
  or b = (1 - sqrt(mu lr))/(1 + sqrt(mu lr)) for `nesterov_sc` (damping 2 sqrt(mu)).
Holding gamma (or r, mu) fixed as lr -> 0 makes each recursion a consistent discretisation of
its ODE; the gap max_k |e_k - e(k dt)| shrinks like lr (GD is Euler's method on e' = -K e) or
like sqrt(lr) = dt for the momentum methods (first order in their time step dt).
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from schemas.ode import STEPS_MAX
from schemas.ode_results import DiscreteRow, DiscreteStudy
from workers.compute.ode.flows import Flow, Tick, exact_on, largest_gap, no_tick
from workers.compute.stats import log_slope

TICK_STEPS = 20000
"""A discrete run reports (and may be cancelled) after every this many steps."""


@dataclass(frozen=True)
class NetworkRuns:
    """A finite network trained beside the function-space runs: `gap(lr, record)` is its residual
    norm's largest gap to the ODE over the recorded steps (workers/compute/ode/network.py)."""

    description: str
    gap: Callable[[float, np.ndarray], float]
    checksum: str  # of its weights at init (workers/compute/weights.py)


def iterate(
    flow: Flow, K: torch.Tensor, e0: torch.Tensor, lr: float, record: np.ndarray, tick: Tick = no_tick
) -> torch.Tensor:
    """The recursion of the module docstring from e_0 = e_{-1} = e0, recorded at the steps in
    `record` (increasing ints from 0); `tick` hears every TICK_STEPS steps.
    K: (n, n), e0: (n,) -> (len(record), n)."""
    momentum = flow.momentum(lr)
    lookahead = flow.name in ("nesterov", "nesterov_sc")
    e, previous = e0.clone(), e0.clone()
    out = torch.empty(len(record), e0.shape[0], dtype=e0.dtype, device=e0.device)
    slot = 0
    for k in range(int(record[-1]) + 1):
        if k == record[slot]:
            out[slot] = e
            slot += 1
            if slot == len(record):
                break
        if k % TICK_STEPS == 0 and k > 0:
            tick(f"{flow.name}: discrete, lr = {lr:.3g}, step {k} of {int(record[-1])}")
        if flow.order == 1:
            e, previous = torch.addmv(e, K, e, alpha=-lr), e
            continue
        b = momentum if momentum is not None else flow.scheduled_momentum(k)
        if lookahead:
            y = e + b * (e - previous)
            e, previous = torch.addmv(y, K, y, alpha=-lr), e
        else:
            e, previous = torch.addmv((1.0 + b) * e - b * previous, K, e, alpha=-lr), e
    return out


def discrete_study(
    flow: Flow,
    K: torch.Tensor,
    lam: torch.Tensor,
    V: torch.Tensor,
    e0: torch.Tensor,
    lrs: list[float],
    times: np.ndarray,
    tick: Tick = no_tick,
    network: NetworkRuns | None = None,
) -> DiscreteStudy:
    """For each lr: record the steps k nearest the grid times (k = round(t / dt)), compare e_k
    with the exact e(k dt) and keep the largest gap relative to |e0|; then the order, the slope
    of log gap against log lr; the same for `network` when given. times: (T,) from 0. Raises
    ValueError past STEPS_MAX steps."""
    rows = []
    for lr in lrs:
        dt = flow.time_per_step(lr)
        steps = round(float(times[-1]) / dt)
        if steps > STEPS_MAX:
            raise ValueError(
                f"{flow.name}: lr = {lr:.4g} needs {steps} steps to reach t_max (at most {STEPS_MAX}); "
                "use larger step sizes or a shorter t_max"
            )
        record = np.unique(np.round(times / dt).astype(np.int64))
        discrete = iterate(flow, K, e0, lr, record, tick)
        exact = exact_on(lam, V, flow, e0, torch.from_numpy(record * dt).to(e0))
        gap = largest_gap(discrete, exact) / float(e0.norm())
        if not math.isfinite(gap):
            raise ValueError(
                f"{flow.name}: the discrete run at lr = {lr:.4g} diverged; use smaller step sizes"
            )
        rows.append(
            DiscreteRow(
                lr=lr,
                momentum=flow.momentum(lr),
                steps=steps,
                time_per_step=dt,
                gap=gap,
                times=(record * dt).tolist(),
                residual_norm=discrete.norm(dim=1).tolist(),
                network_gap=None if network is None else network.gap(lr, record),
            )
        )
    return DiscreteStudy(
        method=flow.method,
        time_map="t = k lr" if flow.order == 1 else "t = k sqrt(lr)",
        rows=rows,
        order=log_slope([row.lr for row in rows], [row.gap for row in rows]),
        expected_order=1.0 if flow.order == 1 else 0.5,
        network=None if network is None else network.description,
        network_checksum=None if network is None else network.checksum,
        network_order=None
        if network is None
        else log_slope([row.lr for row in rows], [row.network_gap or 0.0 for row in rows]),
    )
