"""The census of critical points: L-BFGS then Newton from every start, batch by batch; the
converged points deduplicated up to the loss's symmetry, each classified by its Hessian spectrum
(rescaling directions removed) and its isotropy (docs/science.md §2)."""

import math
from collections import Counter
from dataclasses import dataclass

import torch

from schemas.landscape import LandscapeSpec
from schemas.landscape_results import Census, CriticalPoint, PointSymmetry, Unconverged
from workers.compute.landscape.critical_points import (
    classify,
    lbfgs,
    newton,
    reduced_spectrum,
    rescaling_directions,
)
from workers.compute.landscape.loss import Layout, Objective, dead_neurons
from workers.compute.landscape.problem import F64, Problem, orthonormal
from workers.compute.landscape.symmetry import Frame, deduplicate, frame, isotropy
from workers.compute.progress import Progress


@dataclass(frozen=True)
class Search:
    """Polished points and what happened to each: theta (R, P), losses, gradient norms, L-BFGS
    iterations, and a reason for each start that did not converge (None if it did)."""

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


def search(problem: Problem, theta: torch.Tensor, progress: Progress, span: float) -> Search:
    """L-BFGS then Newton for every start, batch by batch; progress between iterations."""
    spec = problem.spec
    objective = problem.objective(spec.student_width)
    scale = float(problem.teacher.norm(dim=1).max())
    total, batch = theta.shape[0], problem.spec.batch_size(spec.student_width)
    out = Search(theta.clone(), [], [], [], [])
    for start in range(0, total, batch):
        stop = min(start + batch, total)

        def report(iteration: int, start: int = start, stop: int = stop) -> None:
            done = start + (stop - start) * min(1.0, iteration / max(spec.iterations, 1))
            progress(span * done / total, f"L-BFGS on starts {start}-{stop - 1} of {total}")

        descent = lbfgs(objective, theta[start:stop], spec.iterations, on_iteration=report)
        polished = newton(objective, descent.theta, spec.newton_steps, spec.gradient_tolerance)
        dead = dead_neurons(objective.layout.split(polished)[0], scale)
        loss, grad = objective.loss_and_gradient(polished)
        out.theta[start:stop] = polished
        for i, (value, norm) in enumerate(zip(loss.tolist(), grad.norm(dim=1).tolist(), strict=True)):
            out.loss.append(value)
            out.gradient_norm.append(norm)
            steps = int(descent.iterations[i])
            out.iterations.append(steps)
            holes = torch.nonzero(dead[i]).flatten().tolist()
            out.reasons.append(_reason(value, norm, holes, steps, bool(descent.stalled[i]), spec))
        progress(span * stop / total, f"polished starts {start}-{stop - 1} of {total}")
    return out


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


def census(problem: Problem, found: Search) -> Census:
    """Deduplicate the converged points up to symmetry and describe each distinct one."""
    spec = problem.spec
    objective = problem.objective(spec.student_width)
    layout, relabel = objective.layout, orthonormal(problem.teacher)
    converged = [i for i, reason in enumerate(found.reasons) if reason is None]
    frames = frames_of(layout, found.theta[converged], problem.teacher)
    owners = deduplicate(frames, relabel, spec.symmetry_tolerance)
    representatives = sorted(set(owners))
    theta = found.theta[[converged[r] for r in representatives]]
    full, reduced = spectra(objective, theta, problem.spec.batch_size(spec.student_width))
    W, a = layout.split(theta)
    points, verdicts = [], {}
    for slot, r in enumerate(representatives):
        index = converged[r]
        verdict = classify(found.loss[index], reduced[slot], spec.eigenvalue_tolerance, spec.zero_loss)
        verdicts[r] = verdict
        members = [converged[j] for j, owner in enumerate(owners) if owner == r]
        symmetry = isotropy(frames[r], relabel, spec.symmetry_tolerance)
        points.append(
            CriticalPoint(
                loss=found.loss[index],
                gradient_norm=found.gradient_norm[index],
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
                starts=sum(member < spec.starts for member in members),
                supplied=[member - spec.starts for member in members if member >= spec.starts],
            )
        )
    order = sorted(range(len(points)), key=lambda i: (points[i].loss, i))
    reached = Counter(verdicts[owner].kind for owner in owners)
    iterations = torch.tensor(found.iterations, dtype=F64)
    return Census(
        starts=spec.starts,
        supplied=len(spec.points),
        converged=len(converged),
        points=[points[i] for i in order],
        reached=dict(reached),
        unconverged=[_unconverged(spec, found, i) for i, reason in enumerate(found.reasons) if reason],
        lbfgs_iterations={"median": float(iterations.median()), "max": float(iterations.max())},
    )


def _unconverged(spec: LandscapeSpec, found: Search, i: int) -> Unconverged:
    def finite(value: float) -> float | None:
        return value if math.isfinite(value) else None

    return Unconverged(
        start=i if i < spec.starts else None,
        supplied=i - spec.starts if i >= spec.starts else None,
        loss=finite(found.loss[i]),
        gradient_norm=finite(found.gradient_norm[i]),
        reason=found.reasons[i] or "",
    )
