"""What the exact spectral solution buys over integrating the function-space ODEs numerically.

Run from the repository root: `python bench/ode.py`. On n = 1000 points uniform on S^9 with
random-sign labels, K = H_inf of the two-layer ReLU net (float64, CPU) and e(0) = -y, it times,
for gradient flow, critically damped heavy ball and Nesterov's r/t = 3/t flow on the same grid:

- exact: `exact_on` (each mode in closed form, then back to the data basis: T n^2), reported
  with the eigendecomposition of K included (one `eigendecompose`, ~n^3) and with it shared
  (the kernel spectrum computes it anyway, so each further dynamics or grid pays only this);
- scipy's RK45 (`solve_ivp`) on the same first-order system with K @ e in numpy;
- torchdiffeq's dopri5 through the service's `integrate` (which lands on every grid time).

Both integrators at rtol RTOL, atol ATOL; each one's largest gap to the exact solution,
max_t |e_int(t) - e_exact(t)|_2 / |e(0)|_2, is printed beside its time. Each time is the best of
REPEATS calls after one warm-up call (`time.perf_counter`). The integrators' cost grows with
t_max (and with sqrt(lambda_max) t_max for the oscillating second-order flows); the exact
solution's does not, so a longer grid only widens the gap.

On a machine shared with other jobs, run with OMP_NUM_THREADS=1: two threads competing for one
free core can make a millisecond elementwise kernel take a hundred times longer.
"""

import math
import platform

import numpy as np
import torch
from scipy.integrate import solve_ivp
from timing import REPEATS, best_time

from schemas.datasets import SphereDataset
from schemas.networks import TwoLayerNet
from schemas.ode import IntegratorSpec
from workers.compute.datasets import make_data
from workers.compute.kernels.analytic import analytic_kernel
from workers.compute.ode.flows import Flow, exact_on, integrate
from workers.compute.spectrum import eigendecompose

N, D = 1000, 10
T_MAX, POINTS = 20.0, 64
RTOL, ATOL = 1e-8, 1e-12
F64 = torch.float64


def rk45(flow: Flow, K: np.ndarray, e0: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, int]:
    """scipy's RK45 on e' = -K e, or on (e, v)' = (v, -c(t) v - K e) with the limit
    -K e/(1 + r) of the r/t damping at t = 0 (as the service's integrator). -> (T, n) and the
    number of evaluations."""
    n = len(e0)
    if flow.order == 1:
        solution = solve_ivp(lambda _s, e: -(K @ e), (0.0, t[-1]), e0, t_eval=t, rtol=RTOL, atol=ATOL)
        return solution.y.T, solution.nfev

    def field(s: float, state: np.ndarray) -> np.ndarray:
        e, v = state[:n], state[n:]
        force = -(K @ e)
        if flow.gamma is not None:
            return np.concatenate([v, force - flow.gamma * v])
        r = float(flow.r or 0.0)
        return np.concatenate([v, force - r / s * v if s > 0 else force / (1.0 + r)])

    start = np.concatenate([e0, np.zeros(n)])
    solution = solve_ivp(field, (0.0, t[-1]), start, t_eval=t, rtol=RTOL, atol=ATOL)
    return solution.y[:n].T, solution.nfev


def main() -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.machine()}, float64")
    data = make_data(SphereDataset(n=N, d=D, seed=0), F64, torch.device("cpu"))
    K, e0 = analytic_kernel(TwoLayerNet(), data.X), -data.y
    t = torch.linspace(0.0, T_MAX, POINTS, dtype=F64)
    eig_seconds, (lam, V) = best_time(lambda: eigendecompose(K))
    print(
        f"n = {N}, d = {D}, K = H_inf (lambda_min {float(lam[-1]):.4g}, lambda_max {float(lam[0]):.4g}); "
        f"grid: {POINTS} times on [0, {T_MAX:g}]; rtol {RTOL:g}, atol {ATOL:g}; best of {REPEATS}"
    )
    print(f"eigendecomposition: {eig_seconds * 1e3:.1f} ms\n")
    flows = [
        Flow("gd_flow", 1),
        Flow("heavy_ball", 2, gamma=2 * math.sqrt(float(lam[-1]))),
        Flow("nesterov", 2, r=3.0),
    ]
    K_np, e0_np, t_np = K.numpy(), e0.numpy(), t.numpy()
    dopri5 = IntegratorSpec(method="dopri5", rtol=RTOL, atol=ATOL)
    header = (
        "| dynamics | exact, eig shared (ms) | exact + eig (ms) | RK45 (ms) | dopri5 (ms) | "
        "RK45/shared | RK45/(exact+eig) | dopri5/shared | dopri5/(exact+eig) | RK45 gap | dopri5 gap | "
        "RK45 evals | dopri5 evals |"
    )
    print(header)
    print("|" + "|".join("-" * len(cell) for cell in header.split("|")[1:-1]) + "|")
    for flow in flows:
        exact_seconds, exact = best_time(lambda flow=flow: exact_on(lam, V, flow, e0, t))
        scipy_seconds, (scipy_path, scipy_count) = best_time(lambda flow=flow: rk45(flow, K_np, e0_np, t_np))
        torch_seconds, (torch_path, torch_count) = best_time(
            lambda flow=flow: integrate(flow, K, e0, t, dopri5)
        )
        norm = float(e0.norm())
        scipy_gap = float(np.linalg.norm(scipy_path - exact.numpy(), axis=1).max()) / norm
        torch_gap = float((torch_path - exact).norm(dim=1).max()) / norm
        full = exact_seconds + eig_seconds
        print(
            f"| {flow.name} | {exact_seconds * 1e3:.1f} | {full * 1e3:.1f} | {scipy_seconds * 1e3:.0f} | "
            f"{torch_seconds * 1e3:.0f} | {scipy_seconds / exact_seconds:.0f} | {scipy_seconds / full:.1f} | "
            f"{torch_seconds / exact_seconds:.0f} | {torch_seconds / full:.1f} | {scipy_gap:.1e} | {torch_gap:.1e} | "
            f"{scipy_count} | {torch_count} |"
        )


if __name__ == "__main__":
    main()
