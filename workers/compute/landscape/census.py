"""The census of critical points: L-BFGS then Newton from every start, chunk by chunk; each chunk's
converged points tallied up to the loss's symmetry as it finishes (so memory holds one chunk and
one representative per class, whatever the number of starts); at the end each distinct point is
classified by its Hessian spectrum (rescaling directions removed) and its isotropy, and each class
gets its frequency among the random starts with an exact confidence interval (docs/science.md §2)."""

import math
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch

from schemas.landscape import LandscapeSpec
from schemas.landscape_results import (
    UNCONVERGED_LISTED,
    Census,
    CriticalPoint,
    Multiplet,
    PointSymmetry,
    Unconverged,
)
from workers.compute.landscape.critical_points import (
    classify,
    lbfgs,
    multiplets,
    newton,
    reduced_spectrum,
    rescaling_directions,
)
from workers.compute.landscape.frequency import frequency
from workers.compute.landscape.loss import Layout, Objective, dead_neurons
from workers.compute.landscape.problem import F64, Problem, orthonormal
from workers.compute.landscape.symmetry import Classes, Frame, frame, isotropy
from workers.compute.progress import Progress

KINDS = ("global_minimum", "spurious_minimum", "saddle", "degenerate")


@dataclass(frozen=True)
class Search:
    """Polished points of one chunk and what happened to each: theta (R, P), losses, gradient
    norms, L-BFGS iterations, and a reason for each start that did not converge (None if it did)."""

    theta: torch.Tensor
    loss: list[float]
    gradient_norm: list[float]
    iterations: list[int]
    reasons: list[str | None]


def _reason(
    loss: float, norm: float, dead: list[int], iterations: int, stalled: bool, spec: LandscapeSpec
) -> str | None:
    """Why a polished start does not count as a critical point; None when it does."""
    if not (math.isfinite(loss) and math.isfinite(norm)):
        return "loss or gradient not finite"
    if dead:
        return f"neurons {dead} collapsed to zero incoming weights, where the loss is not differentiable"
    if norm <= spec.gradient_tolerance:
        return None
    stall = " (its line search stalled)" if stalled else ""
    return (
        f"gradient norm {norm:.2e} > {spec.gradient_tolerance:.0e} after {iterations} L-BFGS "
        f"iterations{stall} and Newton polishing"
    )


def search(
    problem: Problem, theta: torch.Tensor, on_iteration: Callable[[int], None] | None = None
) -> Search:
    """L-BFGS then Newton for one chunk of starts theta: (R, P), batched."""
    spec = problem.spec
    objective = problem.objective(spec.student_width)
    scale = float(problem.teacher.norm(dim=1).max())
    descent = lbfgs(objective, theta, spec.iterations, on_iteration=on_iteration)
    batch = spec.batch_size()  # Hessians take more memory than L-BFGS: polish in sub-batches
    polished = torch.cat(
        [
            newton(
                objective, descent.theta[first : first + batch], spec.newton_steps, spec.gradient_tolerance
            )
            for first in range(0, theta.shape[0], batch)
        ]
    )
    dead = dead_neurons(objective.layout.split(polished)[0], scale)
    loss, grad = objective.loss_and_gradient(polished)
    found = Search(polished, loss.tolist(), grad.norm(dim=1).tolist(), descent.iterations.tolist(), [])
    for i in range(polished.shape[0]):
        holes = torch.nonzero(dead[i]).flatten().tolist()
        stalled = bool(descent.stalled[i])
        found.reasons.append(
            _reason(found.loss[i], found.gradient_norm[i], holes, found.iterations[i], stalled, spec)
        )
    return found


def spectra(
    objective: Objective, theta: torch.Tensor, batch: int
) -> tuple[list[list[float]], list[list[float]]]:
    """Per point: all Hessian eigenvalues, and those with the rescaling directions removed
    (ascending), computed batch by batch."""
    full, reduced = [], []
    for start in range(0, theta.shape[0], batch):
        chunk = theta[start : start + batch]
        H = objective.hessian(chunk)
        full += torch.linalg.eigvalsh(H).tolist()
        reduced += reduced_spectrum(H, rescaling_directions(objective.layout, chunk)).tolist()
    return full, reduced


def frames_of(layout: Layout, theta: torch.Tensor, V: torch.Tensor) -> list[Frame]:
    W, a = layout.split(theta)
    W, a, V = W.cpu().numpy(), a.cpu().numpy(), V.cpu().numpy()
    return [frame(W[i], a[i], V) for i in range(W.shape[0])]


@dataclass
class Found:
    """A class of converged points: its first point, and who reached it."""

    theta: torch.Tensor  # (P,)
    loss: float
    gradient_norm: float
    starts: int = 0
    supplied: list[int] = field(default_factory=list)


class Tally:
    """The census so far. Positions 0..starts - 1 are the random starts, then the supplied points;
    chunks arrive in order, so the classes (first arrival represents) and the listed unconverged
    starts do not depend on the chunk size."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.spec = problem.spec
        self.layout = problem.objective(self.spec.student_width).layout
        self.classes = Classes(orthonormal(problem.teacher), self.spec.symmetry_tolerance)
        self.found: list[Found] = []
        self.unconverged: list[Unconverged] = []
        self.failed = 0  # random starts that did not converge
        self.converged = 0
        self.iterations: list[int] = []
        self.chunks = 0
        self.placing = 0.0  # seconds spent matching points up to symmetry

    def add(self, positions: range, chunk: Search) -> None:
        self.chunks += 1
        self.iterations += chunk.iterations
        converged = [i for i, reason in enumerate(chunk.reasons) if reason is None]
        self.converged += len(converged)
        started = time.perf_counter()
        frames = frames_of(self.layout, chunk.theta[converged], self.problem.teacher)
        for i, f in zip(converged, frames, strict=True):
            index, new = self.classes.place(f)
            if new:
                self.found.append(Found(chunk.theta[i].clone(), chunk.loss[i], chunk.gradient_norm[i]))
            position = positions[i]
            if position < self.spec.starts:
                self.found[index].starts += 1
            else:
                self.found[index].supplied.append(position - self.spec.starts)
        self.placing += time.perf_counter() - started
        for i, reason in enumerate(chunk.reasons):
            if reason is None:
                continue
            position = positions[i]
            if position < self.spec.starts:
                self.failed += 1
                if self.failed > UNCONVERGED_LISTED:
                    continue
            self.unconverged.append(_unconverged(self.spec, chunk, i, position, reason))

    def census(self) -> Census:
        """Each distinct point described (spectrum, kind, symmetry, frequency), sorted by loss."""
        spec = self.spec
        objective = self.problem.objective(spec.student_width)
        points, kinds = [], []
        if self.found:
            theta = torch.stack([found.theta for found in self.found])
            full, reduced = spectra(objective, theta, spec.batch_size())
            W, a = self.layout.split(theta)
            for slot, found in enumerate(self.found):
                verdict = classify(found.loss, reduced[slot], spec.eigenvalue_tolerance, spec.zero_loss)
                kinds.append(verdict.kind)
                symmetry = isotropy(self.classes.frames[slot], self.classes.relabel, spec.symmetry_tolerance)
                points.append(
                    CriticalPoint(
                        loss=found.loss,
                        gradient_norm=found.gradient_norm,
                        kind=verdict.kind,
                        index=verdict.index,
                        nullity=verdict.nullity,
                        rescaling_directions=len(full[slot]) - len(reduced[slot]),
                        eigenvalues=full[slot],
                        weights=W[slot].tolist(),
                        output_weights=a[slot].tolist(),
                        symmetry=PointSymmetry(
                            isotropy=symmetry.name,
                            input_orbits=symmetry.input_orbits,
                            neuron_orbits=symmetry.neuron_orbits,
                            identical_neurons=symmetry.identical_neurons,
                        ),
                        starts=found.starts,
                        supplied=found.supplied,
                        probability=frequency(found.starts, spec.starts),
                        spectrum=[
                            Multiplet(value=value, multiplicity=count, spread=spread)
                            for value, count, spread in multiplets(full[slot], spec.multiplicity_tolerance)
                        ],
                    )
                )
        order = sorted(range(len(points)), key=lambda i: (points[i].loss, i))
        reached: Counter[str] = Counter()
        by_kind: Counter[str] = Counter()
        for kind, found in zip(kinds, self.found, strict=True):
            reached[kind] += found.starts + len(found.supplied)
            by_kind[kind] += found.starts
        iterations = torch.tensor(self.iterations, dtype=F64)
        described = {kind: frequency(by_kind[kind], spec.starts) for kind in KINDS}
        return Census(
            starts=spec.starts,
            supplied=len(spec.points),
            converged=self.converged,
            points=[points[i] for i in order],
            reached={kind: count for kind, count in reached.items() if count},
            unconverged=self.unconverged,
            lbfgs_iterations={
                "median": float(iterations.median()),
                "max": float(iterations.max()),
                "mean": float(iterations.mean()),
            },
            did_not_converge=frequency(self.failed, spec.starts),
            kinds=None if spec.starts == 0 else {kind: f for kind, f in described.items() if f is not None},
            chunks=self.chunks,
        )


def run_census(
    problem: Problem, chunks: Iterable[tuple[range, torch.Tensor]], progress: Progress, span: float
) -> Tally:
    """Search and tally chunk by chunk; progress within a chunk per L-BFGS iteration and after each
    chunk (fractions of `span`)."""
    spec = problem.spec
    total = spec.starts + len(spec.points)
    tally = Tally(problem)
    for positions, theta in chunks:
        first, stop = positions.start, positions.stop

        def report(iteration: int, first: int = first, stop: int = stop) -> None:
            done = first + (stop - first) * min(1.0, iteration / max(spec.iterations, 1))
            progress(span * done / total, f"L-BFGS on starts {first}-{stop - 1} of {total}")

        tally.add(positions, search(problem, theta, report))
        progress(
            span * stop / total,
            f"polished starts {first}-{stop - 1} of {total}: {len(tally.found)} distinct points so far",
        )
    return tally


def _unconverged(spec: LandscapeSpec, chunk: Search, i: int, position: int, reason: str) -> Unconverged:
    def finite(value: float) -> float | None:
        return value if math.isfinite(value) else None

    return Unconverged(
        start=position if position < spec.starts else None,
        supplied=position - spec.starts if position >= spec.starts else None,
        loss=finite(chunk.loss[i]),
        gradient_norm=finite(chunk.gradient_norm[i]),
        reason=reason,
    )
