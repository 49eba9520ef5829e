"""The `landscape` experiment: a census of the critical points of a teacher-student loss and,
when asked, their symmetry-induced embeddings into wider nets (SCIENCE.md sections 2 and 3)."""

import math
import time
from collections import Counter
from dataclasses import dataclass

import torch

from schemas.landscape import ENUMERATION_MAX, EmbeddingSpec, LandscapeSpec
from schemas.landscape_results import (
    Census,
    CriticalPoint,
    EmbeddedPoint,
    EmbeddingBase,
    EmbeddingStudy,
    LandscapeResult,
    PointSymmetry,
    SubspaceCount,
    Unconverged,
)
from workers.compute.device import resolve_device, single_thread
from workers.compute.landscape.critical_points import (
    classify,
    lbfgs,
    newton,
    reduced_spectrum,
    rescaling_directions,
)
from workers.compute.landscape.embedding import (
    count_G,
    count_T,
    enumerate_constructions,
    split,
    zero_outgoing,
)
from workers.compute.landscape.loss import Layout, Objective, PopulationLoss, SampleLoss, dead_neurons
from workers.compute.landscape.symmetry import Frame, deduplicate, frame, isotropy
from workers.compute.progress import Progress

F64 = torch.float64
SEARCH_SPAN = 0.85  # of the progress bar, when an embedding follows
SMALLEST = 4


def teacher_weights(spec: LandscapeSpec, device: torch.device) -> torch.Tensor:
    """V: (k, d): e_1..e_k, k random orthonormal rows (QR of a seeded Gaussian), or as given."""
    k, d, weights = spec.teacher.neurons, spec.input_dim, spec.teacher.weights
    if weights == "identity":
        return torch.eye(d, dtype=F64, device=device)[:k]
    if weights == "orthonormal":
        generator = torch.Generator().manual_seed(spec.teacher.seed)
        Q, _ = torch.linalg.qr(torch.randn(d, k, generator=generator, dtype=F64))
        return Q.T.contiguous().to(device)
    return torch.tensor(weights, dtype=F64, device=device)


def orthonormal(V: torch.Tensor) -> bool:
    """Teacher rows orthonormal: then relabelling teacher neurons is a symmetry (module symmetry)."""
    eye = torch.eye(V.shape[0], dtype=V.dtype, device=V.device)
    return bool(torch.allclose(V @ V.T, eye, atol=1e-12, rtol=0))


@dataclass(frozen=True)
class Problem:
    """The loss being studied, at any student width."""

    spec: LandscapeSpec
    teacher: torch.Tensor  # (k, d)
    samples: torch.Tensor | None  # (N, d) for the empirical loss

    def objective(self, width: int) -> Objective:
        layout = Layout(width, self.spec.input_dim, self.spec.output_weights == "trained")
        if self.samples is None:
            return PopulationLoss(self.teacher, layout)
        return SampleLoss(self.teacher, layout, self.samples)


def make_problem(spec: LandscapeSpec) -> Problem:
    device = resolve_device(spec.device)
    samples = None
    if spec.samples is not None:
        generator = torch.Generator().manual_seed(spec.sample_seed)
        samples = torch.randn(spec.samples, spec.input_dim, generator=generator, dtype=F64).to(device)
    return Problem(spec, teacher_weights(spec, device), samples)


def initial_points(spec: LandscapeSpec, layout: Layout, device: torch.device) -> torch.Tensor:
    """Random starts (seeded; `init`, `init_scale`), then the supplied points: (starts + points, P)."""
    n, d = spec.student_width, spec.input_dim
    generator = torch.Generator().manual_seed(spec.seed)
    W = torch.randn(spec.starts, n, d, generator=generator, dtype=F64)
    if spec.init == "gaussian":
        W = W * spec.init_scale / d**0.5
    else:
        W = W * spec.init_scale / W.norm(dim=-1, keepdim=True)
    a = torch.ones(spec.starts, n, dtype=F64)
    for point in spec.points:
        W = torch.cat([W, torch.tensor([point.weights], dtype=F64)])
        output = point.output if point.output is not None else [1.0] * n
        a = torch.cat([a, torch.tensor([output], dtype=F64)])
    return layout.join(W, a).to(device)


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


def run_landscape(spec: LandscapeSpec, progress: Progress) -> LandscapeResult:
    """Census (and embeddings) for a validated spec; ValueError with a message if impossible.
    Its ops are tiny: on a CPU they run on one thread (`single_thread`)."""
    if spec.device == "cpu":
        with single_thread():
            return landscape(spec, progress)
    return landscape(spec, progress)


def landscape(spec: LandscapeSpec, progress: Progress) -> LandscapeResult:
    problem = make_problem(spec)
    layout = problem.objective(spec.student_width).layout
    seconds: dict[str, float] = {}
    clock = time.perf_counter()
    theta = initial_points(spec, layout, problem.teacher.device)
    span = SEARCH_SPAN if spec.embedding is not None else 1.0
    found = search(problem, theta, progress, span)
    seconds["search"] = time.perf_counter() - clock
    clock = time.perf_counter()
    points = census(problem, found)
    seconds["census"] = time.perf_counter() - clock
    study = None
    if spec.embedding is not None:
        if not points.points:
            raise ValueError("no start converged to a critical point to embed: raise iterations or starts")
        clock = time.perf_counter()
        study = embed(problem, spec.embedding, points, progress)
        seconds["embedding"] = time.perf_counter() - clock
    progress(1.0, "done")
    return LandscapeResult(
        problem=spec.problem,
        loss="population" if spec.samples is None else f"samples (N = {spec.samples})",
        device=str(problem.teacher.device),
        d=spec.input_dim,
        teacher_neurons=spec.teacher.neurons,
        student_width=spec.student_width,
        output_weights=spec.output_weights,
        census=points,
        embedding=study,
        seconds=seconds,
    )
