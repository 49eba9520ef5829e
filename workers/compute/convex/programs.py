"""Exact convex training of two-layer nets (docs/science.md §6): the SDP for a quadratic
activation (Bartan & Pilanci 2021), the group-lasso program over activation patterns for ReLU
(Pilanci & Ergen 2020), their solution by a conic solver with its certificate, and the network
read off the solution."""

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cvxpy as cp
import numpy as np
import torch
from numpy.typing import NDArray

from schemas.convex import PolynomialProgram, ReluProgram
from schemas.convex_results import SolverReport
from workers.compute.convex.patterns import Masks

Array = NDArray[np.float64]


@dataclass(frozen=True)
class Objective:
    """The regularised objective both sides share, `loss(f(X) - y) + penalty`, with
    f(x) = sum_j sigma(u_j . x) alpha_j. ReLU: penalty beta/2 sum_j (|u_j|^2 + alpha_j^2) (weight
    decay); polynomial: beta sum_j |alpha_j| with |u_j| = 1 (Bartan & Pilanci's formulation)."""

    program: PolynomialProgram | ReluProgram
    loss: str
    delta: float  # huber threshold
    beta: float

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        if isinstance(self.program, ReluProgram):
            return torch.relu(t)
        return (self.program.a * t + self.program.b) * t + self.program.c

    def predict(self, X: torch.Tensor, U: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        """f(X): X (n, d) or (R, b, d), U (..., m, d), alpha (..., m) -> (..., n)."""
        return (self.sigma(X @ U.mT) @ alpha[..., None])[..., 0]

    def data_loss(self, residual: torch.Tensor) -> torch.Tensor:
        """sum_i l(r_i) over the last axis: r^2/2, |r| or Huber's h_delta(r)."""
        size = residual.abs()
        if self.loss == "squared":
            pointwise = 0.5 * residual.square()
        elif self.loss == "l1":
            pointwise = size
        else:
            pointwise = torch.where(
                size <= self.delta, 0.5 * size.square(), self.delta * (size - 0.5 * self.delta)
            )
        return pointwise.sum(-1)

    def penalty(self, U: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        return self.neuron_penalty(U, alpha).sum(-1)

    def neuron_penalty(self, U: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        """Each neuron's share of the penalty: (..., m)."""
        if isinstance(self.program, ReluProgram):
            return 0.5 * self.beta * (U.square().sum(-1) + alpha.square())
        return self.beta * alpha.abs()

    def value(self, X: torch.Tensor, y: torch.Tensor, U: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        """The objective of the nets (U, alpha): (...,)."""
        return self.data_loss(self.predict(X, U, alpha) - y) + self.penalty(U, alpha)

    def convex_loss(self, residual: cp.Expression) -> cp.Expression:
        """The same data loss as a cvxpy expression (cvxpy's huber(r, M) is twice h_M(r))."""
        if self.loss == "squared":
            return 0.5 * cp.sum_squares(residual)
        if self.loss == "l1":
            return cp.norm1(residual)
        return 0.5 * cp.sum(cp.huber(residual, self.delta))


def relu_program(
    objective: Objective, X: Array, y: Array, masks: Masks
) -> tuple[cp.Problem, cp.Variable, cp.Variable]:
    """Pilanci & Ergen (2020, "Neural networks are convex regularizers"), the convex program of a
    two-layer ReLU net with weight decay, over patterns D_i (rows of masks, (P, n)):

        min  loss(sum_i D_i X (v_i - w_i) - y) + beta sum_i (|v_i| + |w_i|)
        s.t. (2 D_i - I) X v_i >= 0,  (2 D_i - I) X w_i >= 0.

    With every pattern its value is the minimum of the weight-decay objective over nets of any
    width >= the number of nonzero v_i, w_i. Returns the problem and V, W: (P, d)."""
    P, d = masks.shape[0], X.shape[1]
    V, W = cp.Variable((P, d)), cp.Variable((P, d))
    D = masks.T.astype(float)  # (n, P)
    prediction = cp.sum(cp.multiply(D, X @ (V - W).T), axis=1)
    signs = 2 * D - 1
    constraints = [cp.multiply(signs, X @ V.T) >= 0, cp.multiply(signs, X @ W.T) >= 0]
    norms = cp.sum(cp.norm(V, 2, axis=1)) + cp.sum(cp.norm(W, 2, axis=1))
    problem = cp.Problem(
        cp.Minimize(objective.convex_loss(prediction - y) + objective.beta * norms), constraints
    )
    return problem, V, W


def sdp_program(objective: Objective, X: Array, y: Array) -> tuple[cp.Problem, cp.Variable, cp.Variable]:
    """Bartan & Pilanci (2021, "Neural spectrahedra and semidefinite lifts"), the SDP for
    sigma(t) = a t^2 + b t + c, over Z = [[Z1, Z2], [Z2^T, Z4]] and Z' alike, both (d + 1) square
    and PSD:

        y_hat_i = a x_i^T (Z1 - Z1') x_i + b x_i^T (Z2 - Z2') + c (Z4 - Z4'),
        min loss(y_hat - y) + beta (Z4 + Z4')  s.t.  tr Z1 = Z4,  tr Z1' = Z4'.

    Each neuron alpha_j > 0 lifts to alpha_j [u_j; 1][u_j; 1]^T in Z (negative ones into Z'), so
    the SDP relaxes the nonconvex problem; it is tight. Returns the problem and Z, Z'."""
    program = objective.program
    if not isinstance(program, PolynomialProgram):
        raise ValueError(f"the SDP is for polynomial activations, not {program.name}")
    d = X.shape[1]
    Z, Zp = cp.Variable((d + 1, d + 1), PSD=True), cp.Variable((d + 1, d + 1), PSD=True)
    Z1, Z2, Z4 = Z[:d, :d] - Zp[:d, :d], Z[:d, d] - Zp[:d, d], Z[d, d] - Zp[d, d]
    prediction = program.a * cp.sum(cp.multiply(X @ Z1, X), axis=1) + program.b * (X @ Z2) + program.c * Z4
    constraints = [cp.trace(Z[:d, :d]) == Z[d, d], cp.trace(Zp[:d, :d]) == Zp[d, d]]
    penalty = objective.beta * (Z[d, d] + Zp[d, d])
    return cp.Problem(cp.Minimize(objective.convex_loss(prediction - y) + penalty), constraints), Z, Zp


def _clarabel_options(tolerance: float, seconds: float) -> dict[str, Any]:
    return {"tol_gap_abs": tolerance, "tol_gap_rel": tolerance, "tol_feas": tolerance, "time_limit": seconds}


def _scs_options(tolerance: float, seconds: float) -> dict[str, Any]:
    return {"eps_abs": tolerance, "eps_rel": tolerance, "time_limit_secs": seconds, "max_iters": 10**6}


def _clarabel_certificate(raw: Any) -> tuple[str, int, float, float, float, float]:
    return str(raw.status), raw.iterations, raw.obj_val, raw.obj_val_dual, raw.r_prim, raw.r_dual


def _scs_certificate(raw: Any) -> tuple[str, int, float, float, float, float]:
    info = raw["info"]
    return info["status"], info["iter"], info["pobj"], info["dobj"], info["res_pri"], info["res_dual"]


SOLVERS: dict[str, tuple[str, Callable[[float, float], dict[str, Any]], Callable[[Any], tuple]]] = {
    "clarabel": (cp.CLARABEL, _clarabel_options, _clarabel_certificate),
    "scs": (cp.SCS, _scs_options, _scs_certificate),
}


def solve(problem: cp.Problem, solver: str, tolerance: float, seconds: float) -> SolverReport:
    """Solve through cvxpy's documented low-level route (get_problem_data, solve_via_data,
    unpack_results), which keeps the solver's raw answer and so its certificate. Anything but
    status `optimal` (infeasible, unbounded, inaccurate, out of time) is a ValueError."""
    name, options, certificate = SOLVERS[solver]
    settings = options(tolerance, seconds)
    began = time.perf_counter()
    data, chain, inverse = problem.get_problem_data(name, solver_opts=settings)
    compiled = time.perf_counter()
    raw = chain.solve_via_data(problem, data, warm_start=False, verbose=False, solver_opts=settings)
    solved = time.perf_counter()
    with warnings.catch_warnings():  # cvxpy warns of inaccurate solutions: they raise below
        warnings.filterwarnings("ignore", message="Solution may be inaccurate")
        problem.unpack_results(raw, chain, inverse)
    raw_status, iterations, primal, dual, r_primal, r_dual = certificate(raw)
    if problem.status != cp.OPTIMAL:
        raise ValueError(
            f"{solver} did not solve the program: status {problem.status} ({raw_status}) after "
            f"{iterations} iterations and {solved - compiled:.1f} s; try solver 'clarabel', a looser "
            "solver_tolerance, a larger solver_seconds, or a smaller problem"
        )
    return SolverReport(
        solver=solver,
        status=problem.status,
        solver_status=raw_status,
        iterations=iterations,
        compile_seconds=compiled - began,
        solve_seconds=solved - compiled,
        primal_objective=primal,
        dual_objective=dual,
        offset=float(inverse[-1]["offset"]),
        duality_gap=primal - dual,
        primal_residual=r_primal,
        dual_residual=r_dual,
    )


def relu_neurons(V: Array, W: Array) -> tuple[Array, Array]:
    """Pilanci & Ergen's map back to a net: u = v / sqrt|v|, alpha = sqrt|v| for each v_i, and
    alpha = -sqrt|w| for each w_i; then alpha relu(X u) = D_i X v (the sign constraints) and
    (|u|^2 + alpha^2) / 2 = |v|, so the net's objective is the program's. Zero pieces are
    dropped. Returns U (k, d), alpha (k,)."""
    pieces = np.concatenate([V, W])
    signs = np.concatenate([np.ones(len(V)), -np.ones(len(W))])
    norms = np.linalg.norm(pieces, axis=1)
    keep = norms > 0
    root = np.sqrt(norms[keep])
    return pieces[keep] / root[:, None], signs[keep] * root


def null_rank_one(Z: Array, d: int, cutoff: float = 0.0) -> list[Array]:
    """Vectors p_k with Z = sum_k p_k p_k^T and p_k^T G p_k = 0, G = diag(I_d, -1), for a PSD Z
    with tr(G Z) = 0 (tr Z1 = Z4): the rank-one decomposition of Sturm & Zhang (2003, "On cones of
    nonnegative quadratic functions") that Bartan & Pilanci use. From
    Z's eigenpieces with eigenvalue above `cutoff`, repeatedly take p_i with g_ii = p_i^T G p_i > 0
    and p_j with g_jj < 0, and the root gamma of g_ii + 2 gamma g_ij + gamma^2 g_jj = 0:
    y = (p_i + gamma p_j) / sqrt(1 + gamma^2) has y^T G y = 0, and z = (p_j - gamma p_i) / sqrt(1 +
    gamma^2) replaces both (p_i p_i^T + p_j p_j^T = y y^T + z z^T). As many pieces as eigenvalues
    above the cutoff: a cutoff at the numerical rank keeps the solver's noise directions out of
    the mixing (each mix would carry them into a real neuron)."""
    values, vectors = np.linalg.eigh((Z + Z.T) / 2)
    keep = values > cutoff
    pieces = list((vectors[:, keep] * np.sqrt(values[keep])).T)
    G = np.ones(d + 1)
    G[d] = -1.0
    done = []
    while len(pieces) > 1:
        g = np.array([p @ (G * p) for p in pieces])
        i, j = int(g.argmax()), int(g.argmin())
        if g[i] <= 0 or g[j] >= 0:
            break
        gij = pieces[i] @ (G * pieces[j])
        gamma = (-gij - np.sqrt(gij**2 - g[i] * g[j])) / g[j]
        scale = np.sqrt(1 + gamma**2)
        done.append((pieces[i] + gamma * pieces[j]) / scale)
        rest = (pieces[j] - gamma * pieces[i]) / scale
        pieces = [p for k, p in enumerate(pieces) if k not in (i, j)] + [rest]
    return done + pieces


def sdp_neurons(Z: Array, Zp: Array, cutoff: float = 0.0) -> tuple[Array, Array]:
    """Neurons from the rank-one pieces p = [q; t] of Z and Z' (docs/science.md §6), over their
    eigenvalues above `cutoff`: u = sign(t) q / |q|, alpha = t^2 from Z and -t^2 from Z'; p p^T =
    t^2 [u; 1][u; 1]^T when |q| = |t|. At most 2 (d + 1) neurons. Returns U (k, d) with unit rows
    and alpha (k,)."""
    d = Z.shape[0] - 1
    rows, outputs = [], []
    for matrix, sign in ((Z, 1.0), (Zp, -1.0)):
        for p in null_rank_one(matrix, d, cutoff):
            q, t = p[:d], p[d]
            if np.linalg.norm(q) > 0 and t != 0:
                rows.append(np.sign(t) * q / np.linalg.norm(q))
                outputs.append(sign * t**2)
    return np.array(rows).reshape(-1, d), np.array(outputs)


def prune(
    objective: Objective,
    X: torch.Tensor,
    y: torch.Tensor,
    U: torch.Tensor,
    alpha: torch.Tensor,
    budget: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The net without its smallest neurons (by penalty share): as many as can go while the
    objective moves by at most `budget`. An interior-point solution spreads solver noise over
    every group; the net's own objective, not a threshold, says which neurons are noise. Every
    prefix of the sorted neurons is tried at once: f with the j smallest removed is f minus the
    running sum of their outputs. U: (k, d), alpha: (k,)."""
    penalties, order = torch.sort(objective.neuron_penalty(U, alpha))
    U, alpha = U[order], alpha[order]
    outputs = objective.sigma(X @ U.T) * alpha  # (n, k): each neuron's output
    dropped = torch.cumsum(torch.cat([outputs.new_zeros(X.shape[0], 1), outputs], 1), 1).T  # (k + 1, n)
    shares = torch.cumsum(torch.cat([penalties.new_zeros(1), penalties]), 0)
    values = objective.data_loss(outputs.sum(1) - dropped - y) + penalties.sum() - shares
    allowed = ((values - values[0]).abs() <= budget).nonzero()  # values[0]: the whole net
    cut = int(allowed.max()) if len(allowed) else 0
    return U[cut:], alpha[cut:]
