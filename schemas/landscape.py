"""The `landscape` experiment: critical points of teacher-student ReLU nets (docs/science.md §2 and §3)."""

import math
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from schemas.common import SEED_MAX, Device, SpecModel, device_field, seed_field
from schemas.costs import BATCH_BYTES, LBFGS_MEMORY, Cost

LANDSCAPE_WIDTH_MAX = 32
LANDSCAPE_DIM_MAX = 32
STARTS_MAX = 100_000
"""Random starts of one census; the job budget (`cost`) decides how many a given size affords."""
SAMPLES_MAX = 2**17
ENUMERATION_MAX = 2**16
"""T and G are confirmed by enumeration when the maps to enumerate ((r* + 1)^m, r^m) are at most this."""

# The census's cost, measured on one core (bench/landscape.py; flop-equivalents at the 5e10 a
# second of schemas/costs.py): the population loss's work goes by student-(student or teacher)
# pair, not by coordinate, since its atan2, norms and temporaries dominate up to d = 20.
PAIR_WORK = 3500
"""Per pair and evaluation of the population loss (or loss and gradient), the L-BFGS iteration's
own bookkeeping included: ~0.07 us (the evaluation alone ~0.04 us)."""
PAIR_COORDINATE_WORK = 20
"""Per pair, input coordinate and evaluation, on top of PAIR_WORK."""
SAMPLE_WORK = 80
"""Per sample, neuron and coordinate and evaluation of the empirical loss (15-30 for the loss,
40-100 with the gradient; 80 matched a census at N = 2000, d = 6 within 15%)."""
HESSIAN_PAIR_WORK = 400
"""Per pair and d^2 of the closed-form Hessian's blocks (200 at k = d = 10, 600 at 20)."""
SAMPLE_HESSIAN_WORK = 8
"""Per sample and P^2 of the empirical Hessian J^T J / N."""
EIGH_WORK = 12
"""Per P^3 of a symmetric eigendecomposition with eigenvectors (16 ms at P = 400)."""
ITERATIONS_PER_ROOT_P = 10
"""Mean L-BFGS iterations per start over sqrt(P), k = d = n, a fixed: measured 39, 70, 103, 143,
195 at k = 4, 7, 10, 14, 20 (P = 16 ... 400); 1.6-2x that with trained a or n != k."""
NEWTON_HESSIANS = 2
"""Hessians per start: one Newton step from |grad| <= 1e-7 reaches 1e-12, plus the spectra."""
TALLY_WORK = 4e6
"""Per converged start: its frame and the assignment problem that places it in its class (~80 us)."""
CHUNK_ITERATION_WORK = 5e7
"""Python and dispatch around one batched L-BFGS iteration (~1 ms: a census at k = d = 10 took
0.2 s longer per extra chunk)."""
CHUNK_TAIL = 2.5
"""A chunk's iterations over the mean per start (its slowest start sets them; measured 1.6-2.6)."""
SEARCH_TEMPORARIES = 6
"""(pairs, d)-sized temporaries per start alive at once in an evaluation (the Hessian needs ~2d + 6)."""
CHUNK_MAX = 1024
"""Random starts per chunk at most (progress and the tally between chunks)."""

LANDSCAPE_EXAMPLE = {
    "kind": "landscape",
    "problem": "teacher_student",
    "input_dim": 4,
    "teacher": {"neurons": 4},
    "student_width": 4,
    "starts": 64,
    "seed": 0,
}


class TeacherSpec(SpecModel):
    """The teacher g(x) = sum_j relu(v_j.x), output weights 1."""

    neurons: int = Field(4, ge=1, le=LANDSCAPE_WIDTH_MAX, description="k: number of teacher neurons")
    weights: Literal["identity", "orthonormal"] | list[list[float]] = Field(
        "identity",
        description="identity: v_j = e_j (needs k <= d); orthonormal: k random orthonormal rows "
        "(seeded); or the k rows of V given explicitly (each of length d, none zero)",
    )
    seed: int = seed_field("seed of the orthonormal teacher")


class PointSpec(SpecModel):
    """A user-supplied student to polish and analyse: rows of `weights` are the neurons w_i."""

    weights: list[list[float]] = Field(
        min_length=1, max_length=LANDSCAPE_WIDTH_MAX, description="n rows of length d, none zero"
    )
    output: list[float] | None = Field(
        None, description="output weights a (trained output layer only); default all ones"
    )


class EmbeddingSpec(SpecModel):
    """Symmetry-induced critical points of width m from each critical point of width r (Simsek et
    al. 2021): splits (copies with the same incoming weights, outgoing weights summing to the
    original) and zero-outgoing neurons (random incoming weights)."""

    width: int = Field(ge=2, le=LANDSCAPE_WIDTH_MAX, description="m: width of the embedded points")
    split_ratios: list[Annotated[float, Field(ge=-8, le=8)]] = Field(
        default_factory=lambda: [0.5, 0.25, -0.5, 1.5],
        min_length=1,
        max_length=16,
        description="lambda: the split neuron's first copy gets lambda a, the other m - r copies "
        "share (1 - lambda) a; outside [0, 1] the copies' outgoing weights have opposite signs",
    )
    bases: int = Field(
        4, ge=1, le=16, description="embed at most this many distinct census points (lowest loss first)"
    )
    enumerate: bool = Field(
        True,
        description="confirm T and G by building every construction when the maps to enumerate, "
        f"(r* + 1)^m for T and r^m for G, are at most {ENUMERATION_MAX}",
    )
    seed: int = seed_field("seed of the zero-outgoing neurons' incoming weights")


class LandscapeSpec(SpecModel):
    """Critical points of the teacher-student loss of two-layer ReLU nets under Gaussian inputs
    (population loss in closed form, or the empirical loss on sampled points): a census from
    random starts and user points, each distinct point (up to symmetry) with its Hessian spectrum,
    kind and isotropy; and symmetry-induced critical points of wider nets."""

    kind: Literal["landscape"] = "landscape"
    problem: Literal["teacher_student", "symmetry_embedding"] = Field(
        "teacher_student",
        description="teacher_student: census of critical points; symmetry_embedding: census (or "
        "`points`), then embeddings of the points found into width `embedding.width`",
    )
    input_dim: int = Field(4, ge=1, le=LANDSCAPE_DIM_MAX, description="d: inputs x ~ N(0, I_d)")
    teacher: TeacherSpec = Field(default_factory=TeacherSpec)
    student_width: int = Field(4, ge=1, le=LANDSCAPE_WIDTH_MAX, description="n: student neurons")
    output_weights: Literal["fixed", "trained"] = Field(
        "fixed", description="fixed: a = 1 (Safran & Shamir; Arjevani & Field); trained: a is a parameter"
    )
    samples: int | None = Field(
        None,
        ge=1,
        le=SAMPLES_MAX,
        description="null: population loss in closed form; N: empirical loss 1/(2N) sum_s (f - g)^2 "
        "on N points x_s ~ N(0, I_d)",
    )
    sample_seed: int = seed_field("seed of the sampled points")
    starts: int = Field(
        32,
        ge=0,
        le=STARTS_MAX,
        description="random starts of the census, searched in chunks of up to 1024 and tallied as "
        "each ends (memory does not grow with the starts); how many fit is the job budget's call "
        "(about 4 ms a start at k = d = n = 10 and 50 ms at 20 on one core)",
    )
    start_seeds: Literal["sequential", "per_start"] = Field(
        "sequential",
        description="sequential: start s is the s-th draw of one generator seeded `seed`; per_start: "
        "start s is drawn alone from a generator seeded seed + s, so it equals the only start of a "
        "job with seed + s, and a census split into jobs with seeds spaced by their `starts` "
        "covers disjoint starts of one larger census",
    )
    init: Literal["gaussian", "sphere"] = Field(
        "gaussian",
        description="gaussian: w_ij ~ N(0, scale^2 / d) (Xavier); sphere: rows uniform on the sphere of "
        "radius scale; trained output weights start at 1",
    )
    init_scale: float = Field(1.0, gt=0, le=10, description="scale of the initial rows")
    seed: int = seed_field("seed of the random starts (see start_seeds)")
    iterations: int = Field(2000, ge=0, le=20000, description="L-BFGS iterations per start (batched)")
    newton_steps: int = Field(20, ge=0, le=100, description="Newton polishing steps after L-BFGS")
    gradient_tolerance: float = Field(
        1e-10, ge=1e-14, le=1e-4, description="a start converged when |grad L| <= this after polishing"
    )
    eigenvalue_tolerance: float = Field(
        1e-8, gt=0, le=1e-2, description="|lambda| <= this max(1, |lambda|_max) counts as zero"
    )
    zero_loss: float = Field(1e-12, gt=0, le=1e-4, description="loss at or below this is a global minimum")
    symmetry_tolerance: float = Field(
        1e-6, gt=0, le=1e-2, description="largest gap between inner products of two points called equal"
    )
    multiplicity_tolerance: float = Field(
        1e-6,
        gt=0,
        le=1e-2,
        description="Hessian eigenvalues whose sorted neighbours differ by at most this max|lambda| + "
        "1e-9 are grouped into one eigenvalue with a multiplicity (CriticalPoint.spectrum)",
    )
    points: list[PointSpec] = Field(
        default_factory=list, max_length=64, description="students to polish and analyse with the starts"
    )
    embedding: EmbeddingSpec | None = Field(None, description="required by problem symmetry_embedding")
    device: Device = device_field()

    model_config = ConfigDict(json_schema_extra={"examples": [LANDSCAPE_EXAMPLE]})

    @model_validator(mode="after")
    def _consistent(self) -> "LandscapeSpec":
        self._check_teacher()
        for index, point in enumerate(self.points):
            self._check_point(index, point)
        if self.starts + len(self.points) == 0:
            raise ValueError("nothing to analyse: give starts > 0 or at least one point")
        if self.start_seeds == "per_start" and self.seed + self.starts - 1 > SEED_MAX:
            raise ValueError(f"per_start seeds seed + s must stay at most {SEED_MAX}: lower seed")
        if self.problem == "symmetry_embedding":
            if self.embedding is None:
                raise ValueError("problem symmetry_embedding needs an `embedding` (its width at least)")
            if self.output_weights != "trained":
                raise ValueError("symmetry_embedding splits outgoing weights: set output_weights 'trained'")
            if self.embedding.width <= self.student_width:
                raise ValueError(
                    f"embedding.width ({self.embedding.width}) must exceed student_width ({self.student_width})"
                )
        elif self.embedding is not None:
            raise ValueError("`embedding` belongs to problem symmetry_embedding")
        return self

    def _check_teacher(self) -> None:
        k, d, weights = self.teacher.neurons, self.input_dim, self.teacher.weights
        if isinstance(weights, str):
            if k > d:
                raise ValueError(f"an {weights} teacher has at most d = {d} neurons, got k = {k}")
            return
        if len(weights) != k or any(len(row) != d for row in weights):
            raise ValueError(f"teacher.weights must be {k} rows (teacher.neurons) of length {d} (input_dim)")
        if any(not any(row) for row in weights):
            raise ValueError("a teacher neuron with zero weights computes nothing: remove it")

    def _check_point(self, index: int, point: PointSpec) -> None:
        n, d = self.student_width, self.input_dim
        if len(point.weights) != n or any(len(row) != d for row in point.weights):
            raise ValueError(f"points[{index}].weights must be {n} rows (student_width) of length {d}")
        zero = [i for i, row in enumerate(point.weights) if not any(row)]
        if zero:
            raise ValueError(
                f"points[{index}] has neurons {zero} with zero incoming weights, where the loss is "
                "not differentiable: perturb them"
            )
        if point.output is not None:
            if self.output_weights == "fixed":
                raise ValueError(f"points[{index}].output given, but output_weights is 'fixed' (a = 1)")
            if len(point.output) != n:
                raise ValueError(f"points[{index}].output must have {n} entries (student_width)")

    def _per_point(self, width: int) -> tuple[float, float, float, float]:
        """(one loss or loss-and-gradient evaluation, a Hessian with its eigendecomposition, search
        bytes, Hessian bytes) for one point of the given width, in the measured work units above."""
        k, d = self.teacher.neurons, self.input_dim
        P = self.parameters(width)
        pairs = width * (width + k)
        if self.samples is None:
            evaluate = PAIR_WORK * pairs + PAIR_COORDINATE_WORK * pairs * d
            hessian = HESSIAN_PAIR_WORK * pairs * d * d
            search, temporaries = SEARCH_TEMPORARIES * pairs * d, pairs * d * (2 * d + 6)
        else:
            N = self.samples
            evaluate, hessian = SAMPLE_WORK * N * width * d, SAMPLE_HESSIAN_WORK * N * P**2
            search, temporaries = SEARCH_TEMPORARIES * N * width, N * (4 * width + P)
        search_bytes = 8.0 * (search + (2 * LBFGS_MEMORY + 8) * P)
        hessian_bytes = 8.0 * (temporaries + 4 * P**2)
        return evaluate, hessian + EIGH_WORK * P**3, search_bytes, hessian_bytes

    def parameters(self, width: int | None = None) -> int:
        """P = n d, plus n trained output weights (n: the student width unless given)."""
        n = self.student_width if width is None else width
        return n * self.input_dim + (n if self.output_weights == "trained" else 0)

    def batch_size(self, width: int | None = None) -> int:
        """Points of this width (default: the student's) whose Hessians are formed together: as
        many as fit in BATCH_BYTES, at least one."""
        width = self.student_width if width is None else width
        return max(1, int(BATCH_BYTES // self._per_point(width)[3]))

    def chunk_size(self) -> int:
        """Random starts searched together (batched L-BFGS, then Newton in `batch_size` batches,
        then tallied): as many as fit in BATCH_BYTES without Hessians, at most CHUNK_MAX."""
        return max(1, min(CHUNK_MAX, int(BATCH_BYTES // self._per_point(self.student_width)[2])))

    def expected_iterations(self) -> float:
        """Mean L-BFGS iterations per start: ITERATIONS_PER_ROOT_P sqrt(P) when the student has the
        teacher's width and fixed output weights, twice that otherwise; at most `iterations`."""
        k, n = self.teacher.neurons, self.student_width
        scale = 1.0 if n == k and self.output_weights == "fixed" else 2.0
        return min(float(self.iterations), scale * ITERATIONS_PER_ROOT_P * self.parameters() ** 0.5)

    def cost(self) -> Cost:
        """Per start: `expected_iterations` L-BFGS iterations of two evaluations each (a gradient,
        a line-search loss), NEWTON_HESSIANS Hessians with their eigendecompositions (one Newton
        step, and the distinct points' spectra; up to `newton_steps` when the student is wider
        than the teacher, whose minima are degenerate and polish linearly), and the tally; per
        chunk, the Python around CHUNK_TAIL x the mean iterations (a chunk iterates until its
        slowest start stops). Embedding, per base point: the constructions' Hessians at width m
        and the enumerated constructions' gradients; T once."""
        total = self.starts + len(self.points)
        evaluate, hessian, search_bytes, hessian_bytes = self._per_point(self.student_width)
        iterations = self.expected_iterations()
        hessians = NEWTON_HESSIANS if self.student_width <= self.teacher.neurons else self.newton_steps + 1
        per_start = iterations * 2 * evaluate + min(hessians, self.newton_steps + 1) * (hessian + evaluate)
        chunks = math.ceil(self.starts / self.chunk_size()) + (1 if self.points else 0)
        flops = total * (per_start + TALLY_WORK) + chunks * CHUNK_TAIL * iterations * CHUNK_ITERATION_WORK
        memory = max(
            search_bytes * min(total, self.chunk_size()), hessian_bytes * min(total, self.batch_size())
        )
        if self.embedding is not None:
            m, r, k = self.embedding.width, self.student_width, self.teacher.neurons
            evaluate_m, hessian_m, _, memory_m = self._per_point(m)
            constructions = r * len(self.embedding.split_ratios) + 1
            enumerated = 0
            if self.embedding.enumerate:
                enumerated = min((k + 1) ** m, ENUMERATION_MAX) + self.embedding.bases * min(
                    r**m, ENUMERATION_MAX
                )
            flops += self.embedding.bases * constructions * hessian_m + enumerated * evaluate_m
            chunk = min(max(constructions, enumerated), self.batch_size(m))
            memory = max(memory, memory_m * chunk)
        return Cost(flops=flops, memory_bytes=memory)
