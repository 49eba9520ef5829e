"""Symmetry-induced critical points of wider nets (Simsek et al., ICML 2021).

A width-r point (W, a) embeds into width m > r without changing the function f in two ways:

- split: neuron l becomes copies with the same incoming weights w_l whose outgoing weights sum to
  a_l. Every copy sees the residual through the same relu(w_l.x), so dL/dw and dL/da of each copy
  are those of the original scaled by its share: a critical point stays critical (any loss).
- zero outgoing weight: a new neuron (u, 0). dL/du = 0, but dL/da = E[(f - g) relu(u.x)], which
  vanishes for every u only when f = g: the global minimum stays critical, other points do not.

Counts of the affine subspaces these constructions sweep (a map from the m new neurons to the r
old ones, or to "zero outgoing"):
    T(r*, m) = sum_{j=r*}^{m} C(m, j) r*! S(j, r*)  (zero loss: maps covering all r* neurons),
    G(r, m) = r! S(m, r)                            (splits only: surjections onto the r neurons),
S(j, r) the Stirling numbers of the second kind. `enumerate_constructions` builds every map for
small sizes and checks the points it gives, so the formulas are confirmed by brute force.
"""

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from workers.compute.landscape.loss import Layout, Objective


def stirling2(m: int, r: int) -> int:
    """S(m, r): partitions of m labelled items into r non-empty blocks, by
    S(m, r) = r S(m - 1, r) + S(m - 1, r - 1), S(0, 0) = 1."""
    row = [1] + [0] * r
    for _ in range(m):
        row = [0] + [j * row[j] + row[j - 1] for j in range(1, r + 1)]
    return row[r]


def count_T(r_star: int, m: int) -> int:
    """T(r*, m) = sum_{j=r*}^{m} C(m, j) r*! S(j, r*) (Simsek et al. 2021)."""
    return sum(math.comb(m, j) * math.factorial(r_star) * stirling2(j, r_star) for j in range(r_star, m + 1))


def count_G(r: int, m: int) -> int:
    """G(r, m) = r! S(m, r): surjections of m neurons onto r (Simsek et al. 2021)."""
    return math.factorial(r) * stirling2(m, r)


def split(
    W: torch.Tensor, a: torch.Tensor, neuron: int, width: int, ratio: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Neuron `neuron` of (W: (r, d), a: (r,)) becomes width - r + 1 copies: itself with outgoing
    weight ratio a_l, and width - r appended copies with (1 - ratio) a_l / (width - r) each."""
    extra = width - W.shape[0]
    W_new = torch.cat([W, W[neuron].expand(extra, -1)])
    a_new = torch.cat([a, a[neuron] * (1 - ratio) / extra * a.new_ones(extra)])
    a_new[neuron] = ratio * a[neuron]
    return W_new, a_new


def zero_outgoing(W: torch.Tensor, a: torch.Tensor, U: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Append neurons with incoming weights U: (m - r, d) and outgoing weight 0."""
    return torch.cat([W, U]), torch.cat([a, a.new_zeros(U.shape[0])])


def maps(r: int, m: int, zeros: bool) -> Iterator[tuple[int, ...]]:
    """Maps of m neurons to {0..r-1} (or -1: zero outgoing, when zeros) that cover all of 0..r-1."""
    for assignment in itertools.product(range(-1 if zeros else 0, r), repeat=m):
        if len(set(assignment) - {-1}) == r:
            yield assignment


def build(
    W: torch.Tensor, a: torch.Tensor, assignments: list[tuple[int, ...]], U: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Points of width m for maps c: neuron i copies w_{c(i)} with a share of a_{c(i)} (the j-th of
    s copies gets j / (s (s + 1) / 2): generic, summing to 1), or is (U_i, 0) when c(i) = -1.
    W: (r, d), a: (r,), U: (m, d) -> (E, m, d), (E, m)."""
    index = torch.tensor(assignments, device=W.device)  # (E, m)
    zero = index < 0
    source = index.clamp_min(0)
    W_new = torch.where(zero[..., None], U, W[source])
    same = (index[:, :, None] == index[:, None, :]) & ~zero[:, :, None]
    rank = torch.tril(same.to(W.dtype)).sum(-1)  # position j of each copy in its group
    size = same.to(W.dtype).sum(-1).clamp_min(1)
    share = rank / (size * (size + 1) / 2)
    return W_new, torch.where(zero, 0.0, a[source] * share)


@dataclass(frozen=True)
class Enumeration:
    """What building every construction gave."""

    count: int
    distinct: bool
    all_critical: bool
    max_gradient_norm: float
    max_loss_change: float


def enumerate_constructions(
    objective: Objective,
    W: torch.Tensor,
    a: torch.Tensor,
    base_loss: float,
    U: torch.Tensor,
    zeros: bool,
    tolerance: float,
    batch: int,
) -> Enumeration:
    """Build the point of every map (`maps`, `build`) from the critical point (W: (r, d), a: (r,))
    of loss base_loss, evaluate them in chunks with `objective` (of width m), and check that they
    are distinct and critical, `batch` points at a time."""
    layout: Layout = objective.layout
    assignments = list(maps(W.shape[0], layout.n, zeros))
    worst_gradient, worst_change, points = 0.0, 0.0, []
    for start in range(0, len(assignments), batch):
        W_new, a_new = build(W, a, assignments[start : start + batch], U)
        theta = layout.join(W_new, a_new)
        loss, grad = objective.loss_and_gradient(theta)
        worst_gradient = max(worst_gradient, float(grad.norm(dim=1).max()))
        worst_change = max(worst_change, float((loss - base_loss).abs().max()))
        points.append(theta)
    stacked = torch.cat(points)
    distinct = torch.unique(torch.round(stacked * 1e9), dim=0).shape[0] == stacked.shape[0]
    return Enumeration(len(assignments), distinct, worst_gradient <= tolerance, worst_gradient, worst_change)
