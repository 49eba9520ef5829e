"""The `landscape` experiment: a census of the critical points of a teacher-student loss and,
when asked, their symmetry-induced embeddings into wider nets (docs/science.md §2 and §3)."""

from schemas.landscape import LandscapeSpec
from schemas.landscape_results import LandscapeResult
from workers.compute.device import Clock, single_thread
from workers.compute.landscape.census import run_census
from workers.compute.landscape.embedding import SEARCH_SPAN, embed
from workers.compute.landscape.problem import initial_points, make_problem
from workers.compute.progress import Progress


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
    clock = Clock(problem.teacher.device)
    chunks = initial_points(spec, layout, problem.teacher.device)
    span = SEARCH_SPAN if spec.embedding is not None else 1.0
    tally = run_census(problem, chunks, progress, span)
    clock.lap("search")
    points = tally.census()
    clock.lap("census")
    study = None
    if spec.embedding is not None:
        if not points.points:
            raise ValueError("no start converged to a critical point to embed: raise iterations or starts")
        study = embed(problem, spec.embedding, points, progress)
        clock.lap("embedding")
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
        seconds={**clock.seconds, "deduplication": tally.placing},
    )
