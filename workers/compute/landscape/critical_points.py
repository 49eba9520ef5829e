"""Finding critical points of a batched objective and telling what they are.

A start goes through a quasi-Newton phase (L-BFGS, Nocedal & Wright 2006, alg. 7.4/7.5, with an
Armijo backtracking line search), batched over starts, then Newton polishing
theta <- theta - H^+ g (pseudo-inverse over eigenvalues above a cutoff), which converges
quadratically to the nearest nondegenerate critical point of any index. A Newton step is kept only
where it lowers the gradient norm, so polishing never wanders off.

Classification follows the Hessian spectrum at the polished point (`classify`).
"""

from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

import torch

from schemas.costs import LBFGS_MEMORY
from workers.compute.landscape.loss import Layout, Objective

ARMIJO = 1e-4
HALVINGS = 20
"""Step halvings a line search tries before the start counts as stalled and goes to Newton. A
quasi-Newton direction needing more is broken (a k = d = 20 start at |grad| = 1.4e-7 once accepted
steps of 2^-30 for 2000 iterations; Newton polished it to 3e-15 in one step)."""
CURVATURE_FLOOR = 1e-12
"""Pairs (s, y) with s.y <= CURVATURE_FLOOR |s| |y| are not stored (the update would not be
positive definite)."""
LBFGS_TARGET = 1e-7
"""Gradient norm at which the quasi-Newton phase hands over to Newton: well above the float64
resolution of the Armijo test (the loss changes by ~|g|^2 / lambda per step)."""
NEWTON_CUTOFF = 1e-12
"""Eigenvalues below NEWTON_CUTOFF * max(1, |lambda|_max) are left out of the Newton step."""


def _two_loop(
    grad: torch.Tensor, S: torch.Tensor, Y: torch.Tensor, rho: torch.Tensor, gamma: torch.Tensor, newest: int
) -> torch.Tensor:
    """H_k g by the L-BFGS two-loop recursion, batched: grad (R, P); S, Y: (M, R, P) circular
    buffers whose slot `newest` is the latest pair; rho: (M, R) with 0 for empty or rejected
    slots (they then contribute nothing); gamma: (R,) initial scaling s.y / y.y."""
    memory = S.shape[0]
    order = [(newest - j) % memory for j in range(memory)]
    q = grad.clone()
    alphas = []
    for slot in order:
        alpha = rho[slot] * (S[slot] * q).sum(-1)
        q -= alpha[:, None] * Y[slot]
        alphas.append(alpha)
    r = gamma[:, None] * q
    for slot, alpha in zip(reversed(order), reversed(alphas), strict=True):
        beta = rho[slot] * (Y[slot] * r).sum(-1)
        r += (alpha - beta)[:, None] * S[slot]
    return r


def _backtrack(
    objective: Objective,
    theta: torch.Tensor,
    loss: torch.Tensor,
    direction: torch.Tensor,
    slope: torch.Tensor,
    step: torch.Tensor,
    pending: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Halve each pending start's step until L(theta + t d) <= L(theta) + ARMIJO t g.d; returns the
    steps (0 where HALVINGS halvings did not suffice) and a mask of accepted starts. Only the starts
    still searching are evaluated, so one start that needs many halvings (or one already at its
    target, where rounding hides any decrease) costs its own losses, not the whole batch's."""
    accepted = ~pending
    step = step.clone()
    for _ in range(HALVINGS):
        rows = torch.nonzero(~accepted).flatten()
        if rows.numel() == 0:
            break
        trial = objective.loss(theta[rows] + step[rows, None] * direction[rows])
        passed = trial <= loss[rows] + ARMIJO * step[rows] * slope[rows]  # NaN never passes
        accepted[rows] = passed
        step[rows] = torch.where(passed, step[rows], step[rows] / 2)
    return torch.where(accepted & pending, step, torch.zeros_like(step)), accepted & pending


@dataclass(frozen=True)
class Descent:
    """Where the quasi-Newton phase left each start."""

    theta: torch.Tensor  # (R, P)
    iterations: torch.Tensor  # (R,) iterations each start took
    stalled: torch.Tensor  # (R,) the line search found no decrease


COMPACT_FRACTION = 0.125
"""The batch is compacted to the starts still iterating once this fraction of it has stopped:
each iteration then costs in proportion to the starts left, not the batch."""


def lbfgs(
    objective: Objective,
    theta: torch.Tensor,
    iterations: int,
    memory: int = LBFGS_MEMORY,
    on_iteration: Callable[[int], None] | None = None,
) -> Descent:
    """Batched L-BFGS until every start has |grad| <= LBFGS_TARGET, stalls, or runs out of
    iterations. theta: (R, P). Each start's iterates depend on that start alone: the batch only
    shares the calls, and starts that stopped leave it (`COMPACT_FRACTION`)."""
    R, P = theta.shape
    out = theta.clone()
    count = torch.zeros(R, dtype=torch.long, device=theta.device)
    stalled = torch.zeros(R, dtype=torch.bool, device=theta.device)
    rows = torch.arange(R, device=theta.device)  # the working set: starts still iterating
    loss, grad = objective.loss_and_gradient(theta)
    S = theta.new_zeros(memory, R, P)
    Y = theta.new_zeros(memory, R, P)
    rho = theta.new_zeros(memory, R)
    gamma = theta.new_ones(R)
    halted = torch.zeros(R, dtype=torch.bool, device=theta.device)  # stalled, in the working set
    for it in range(iterations):
        active = (grad.norm(dim=1) > LBFGS_TARGET) & ~halted
        idle = int((~active).sum())
        if idle == rows.numel():
            break
        if idle >= COMPACT_FRACTION * rows.numel():
            out[rows], stalled[rows] = theta, halted
            keep = torch.nonzero(active).flatten()
            rows, theta, loss, grad, halted = rows[keep], theta[keep], loss[keep], grad[keep], halted[keep]
            S, Y, rho, gamma, active = S[:, keep], Y[:, keep], rho[:, keep], gamma[keep], active[keep]
        r = rows.numel()
        direction = -_two_loop(grad, S, Y, rho, gamma, (it - 1) % memory)
        slope = (direction * grad).sum(-1)
        uphill = ~(slope < 0)
        direction = torch.where(uphill[:, None], -grad, direction)
        slope = torch.where(uphill, -grad.square().sum(-1), slope)
        first = 1.0 / grad.norm(dim=1).clamp_min(1.0) if it == 0 else theta.new_ones(r)
        step, accepted = _backtrack(objective, theta, loss, direction, slope, first, active)
        moving = active & accepted
        halted |= active & ~accepted
        new_theta = torch.where(moving[:, None], theta + step[:, None] * direction, theta)
        new_loss, new_grad = objective.loss_and_gradient(new_theta)
        s, y = new_theta - theta, new_grad - grad
        sy = (s * y).sum(-1)
        good = moving & (sy > CURVATURE_FLOOR * s.norm(dim=1) * y.norm(dim=1))
        slot = it % memory
        S[slot], Y[slot] = s * good[:, None], y * good[:, None]
        rho[slot] = torch.where(good, 1.0 / torch.where(good, sy, 1.0), 0.0)
        gamma = torch.where(good, sy / y.square().sum(-1).clamp_min(1e-300), gamma)
        theta, loss, grad = new_theta, new_loss, new_grad
        count[rows] += moving.long()
        if on_iteration is not None:
            on_iteration(it)
    out[rows], stalled[rows] = theta, halted
    return Descent(out, count, stalled)


def newton(objective: Objective, theta: torch.Tensor, steps: int, tolerance: float) -> torch.Tensor:
    """Newton polishing theta <- theta - H^+ g, batched; a start stops once |g| <= tolerance / 100
    or when a step would not lower |g| (then it keeps its best point). theta: (R, P). Hessians
    are formed only for the starts still polishing."""
    theta = theta.clone()
    _, grad = objective.loss_and_gradient(theta)
    norm = grad.norm(dim=1)
    frozen = norm <= tolerance / 100
    for _ in range(steps):
        rows = torch.nonzero(~frozen).flatten()
        if rows.numel() == 0:
            break
        point, slope = theta[rows], grad[rows]
        values, vectors = torch.linalg.eigh(objective.hessian(point))
        scale = values.abs().amax(-1, keepdim=True).clamp_min(1.0)
        inverse = torch.where(values.abs() > NEWTON_CUTOFF * scale, 1.0 / values, 0.0)
        coefficients = (vectors.transpose(1, 2) @ slope[..., None])[..., 0] * inverse
        trial = point - (vectors @ coefficients[..., None])[..., 0]
        _, trial_grad = objective.loss_and_gradient(trial)
        trial_norm = trial_grad.norm(dim=1)
        better = trial_norm < norm[rows]  # NaN never passes
        theta[rows] = torch.where(better[:, None], trial, point)
        grad[rows] = torch.where(better[:, None], trial_grad, slope)
        norm[rows] = torch.where(better, trial_norm, norm[rows])
        frozen[rows] = ~better | (norm[rows] <= tolerance / 100)
    return theta


def rescaling_directions(layout: Layout, theta: torch.Tensor) -> torch.Tensor:
    """Tangents of (w_i, a_i) -> (c w_i, a_i / c) at c = 1: (R, n, P), one per neuron; zero
    (no directions) when the output layer is fixed. relu(c z) = c relu(z) for c > 0 makes the loss
    constant along these curves, so at a critical point H tau_i = 0 exactly."""
    W, a = layout.split(theta)
    R, n, d = W.shape
    if not layout.trained:
        return theta.new_zeros(R, 0, layout.size)
    tau = theta.new_zeros(R, n, layout.size)
    idx = torch.arange(n)
    tau[:, idx[:, None], idx[:, None] * d + torch.arange(d)] = W
    tau[:, idx, n * d + idx] = -a
    return tau


def reduced_spectrum(hessian: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """Eigenvalues (ascending) of the Hessian restricted to the orthogonal complement of the
    given directions: (R, P - n) for directions (R, n, P); all eigenvalues when there are none."""
    if directions.shape[1] == 0:
        return torch.linalg.eigvalsh(hessian)
    P = hessian.shape[-1]
    basis, _ = torch.linalg.qr(directions.transpose(1, 2), mode="complete")  # (R, P, P)
    complement = basis[:, :, directions.shape[1] :]
    return torch.linalg.eigvalsh(complement.transpose(1, 2) @ hessian @ complement)[
        :, : P - directions.shape[1]
    ]


@dataclass(frozen=True)
class Verdict:
    """What a critical point is, from its loss and its (reduced) Hessian spectrum."""

    kind: str
    index: int
    nullity: int


def classify(loss: float, eigenvalues: list[float], tolerance: float, zero_loss: float) -> Verdict:
    """index = #{lambda < -tol}, nullity = #{|lambda| <= tol}, tol = tolerance max(1, |lambda|_max);
    a negative eigenvalue makes a saddle; otherwise zero loss (the loss is >= 0) certifies a global
    minimum; otherwise all eigenvalues positive make a strict local minimum with positive loss
    (spurious), and zero eigenvalues leave it undecided (degenerate: higher-order terms decide)."""
    scale = max([1.0, *(abs(value) for value in eigenvalues)])
    index = sum(value < -tolerance * scale for value in eigenvalues)
    nullity = sum(abs(value) <= tolerance * scale for value in eigenvalues)
    if index > 0:
        kind = "saddle"
    elif loss <= zero_loss:
        kind = "global_minimum"
    elif nullity == 0:
        kind = "spurious_minimum"
    else:
        kind = "degenerate"
    return Verdict(kind, index, nullity)


MULTIPLET_FLOOR = 1e-9
"""Absolute part of the gap within which sorted Hessian eigenvalues are grouped (`multiplets`)."""


def multiplets(eigenvalues: list[float], tolerance: float) -> list[tuple[float, int, float]]:
    """Ascending eigenvalues grouped where neighbours differ by at most tolerance max|lambda| +
    MULTIPLET_FLOOR: (mean, multiplicity, spread) per group. Symmetry makes eigenvalues exactly
    equal (the dimensions of the isotypic components, Arjevani & Field 2020); at a point polished to
    |grad| ~ 1e-10 they split by ~1e-12, far inside the tolerance."""
    if not eigenvalues:
        return []
    gap = tolerance * max(abs(value) for value in eigenvalues) + MULTIPLET_FLOOR
    groups = [[eigenvalues[0]]]
    for previous, value in pairwise(eigenvalues):
        if value - previous <= gap:
            groups[-1].append(value)
        else:
            groups.append([value])
    return [(sum(group) / len(group), len(group), group[-1] - group[0]) for group in groups]
