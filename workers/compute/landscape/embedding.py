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

from schemas.landscape import ENUMERATION_MAX, EmbeddingSpec
from schemas.landscape_results import (
    Census,
    CriticalPoint,
    EmbeddedPoint,
    EmbeddingBase,
    EmbeddingStudy,
    SubspaceCount,
)
from workers.compute.landscape.census import spectra
from workers.compute.landscape.critical_points import classify
from workers.compute.landscape.loss import Layout, Objective
from workers.compute.landscape.problem import F64, Problem
from workers.compute.progress import Progress


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


# ---------------------------------------------------------------------------------------------
# the study: the teacher's T, and each low-loss census point's embeddings and G
# ---------------------------------------------------------------------------------------------

SEARCH_SPAN = 0.85  # of the progress bar spent on the search when an embedding follows
SMALLEST = 4  # smallest reduced Hessian eigenvalues reported per embedded point


def _embedded(
    problem: Problem,
    width: int,
    constructions: list[tuple[str, int | None, float | None]],
    theta: torch.Tensor,
    base_loss: float,
) -> list[EmbeddedPoint]:
    """Evaluate constructed points of the given width: criticality, Hessian index and kind."""
    spec = problem.spec
    objective = problem.objective(width)
    loss, grad = objective.loss_and_gradient(theta)
    _, reduced = spectra(objective, theta, spec.batch_size(width))
    points = []
    for i, (construction, neuron, ratio) in enumerate(constructions):
        norm = float(grad[i].norm())
        verdict = classify(float(loss[i]), reduced[i], spec.eigenvalue_tolerance, spec.zero_loss)
        critical = norm <= spec.gradient_tolerance
        points.append(
            EmbeddedPoint(
                construction=construction,
                neuron=neuron,
                ratio=ratio,
                loss=float(loss[i]),
                loss_change=float(loss[i]) - base_loss,
                gradient_norm=norm,
                critical=critical,
                index=verdict.index,
                nullity=verdict.nullity,
                kind=verdict.kind if critical else "not_critical",
                smallest_eigenvalues=reduced[i][:SMALLEST],
            )
        )
    return points


def _count(
    problem: Problem,
    embedding: EmbeddingSpec,
    name: str,
    W: torch.Tensor,
    a: torch.Tensor,
    base_loss: float,
    U: torch.Tensor,
) -> SubspaceCount:
    """T (zero-outgoing neurons allowed) or G (splits only), by formula and, when small, enumeration."""
    r, m = W.shape[0], embedding.width
    zeros = name == "T"
    formula = count_T(r, m) if zeros else count_G(r, m)
    if not embedding.enumerate or (r + zeros) ** m > ENUMERATION_MAX:
        return SubspaceCount(name=name, r=r, m=m, formula=formula)
    found = enumerate_constructions(
        problem.objective(m),
        W,
        a,
        base_loss,
        U,
        zeros,
        problem.spec.gradient_tolerance,
        problem.spec.batch_size(m),
    )
    return SubspaceCount(
        name=name,
        r=r,
        m=m,
        formula=formula,
        enumerated=found.count,
        distinct=found.distinct,
        all_critical=found.all_critical,
        max_gradient_norm=found.max_gradient_norm,
        max_loss_change=found.max_loss_change,
    )


def embed_base(
    problem: Problem, embedding: EmbeddingSpec, point: CriticalPoint, index: int, U: torch.Tensor
) -> EmbeddingBase:
    """Splits of one neuron per neuron orbit at each ratio, the zero-outgoing construction, and G."""
    device = problem.teacher.device
    W = torch.tensor(point.weights, dtype=F64, device=device)
    a = torch.tensor(point.output_weights, dtype=F64, device=device)
    m, r = embedding.width, W.shape[0]
    layout = problem.objective(m).layout
    constructions: list[tuple[str, int | None, float | None]] = []
    thetas = []
    for orbit in point.symmetry.neuron_orbits:
        for ratio in embedding.split_ratios:
            constructions.append(("split", orbit[0], ratio))
            W_split, a_split = split(W, a, orbit[0], m, ratio)
            thetas.append(layout.join(W_split[None], a_split[None]))
    constructions.append(("zero_outgoing", None, None))
    W_zero, a_zero = zero_outgoing(W, a, U[: m - r])
    thetas.append(layout.join(W_zero[None], a_zero[None]))
    points = _embedded(problem, m, constructions, torch.cat(thetas), point.loss)
    G = _count(problem, embedding, "G", W, a, point.loss, U)
    return EmbeddingBase(point=index, loss=point.loss, points=points, G=G)


def embed(problem: Problem, embedding: EmbeddingSpec, found: Census, progress: Progress) -> EmbeddingStudy:
    """T from the teacher (the zero-loss net of minimal width k, output weights 1) and, for the
    lowest-loss census points, their embeddings and G. Zero-outgoing neurons get incoming weights
    U: (m, d) ~ N(0, I / d), seeded."""
    m, d = embedding.width, problem.spec.input_dim
    generator = torch.Generator().manual_seed(embedding.seed)
    U = (torch.randn(m, d, generator=generator, dtype=F64) / d**0.5).to(problem.teacher.device)
    V = problem.teacher
    T = _count(problem, embedding, "T", V, V.new_ones(V.shape[0]), 0.0, U)
    chosen = found.points[: embedding.bases]
    bases = []
    for i, point in enumerate(chosen):
        progress(SEARCH_SPAN + (1 - SEARCH_SPAN) * i / len(chosen), f"embedding census point {i}")
        bases.append(embed_base(problem, embedding, point, i, U))
    return EmbeddingStudy(width=m, T=T, bases=bases)
