"""Result models of the `landscape` experiment."""

from typing import Literal

from pydantic import Field

from schemas.common import ResultModel

PointKind = Literal["global_minimum", "spurious_minimum", "saddle", "degenerate"]
KIND_DESCRIPTION = (
    "from the Hessian with the rescaling directions removed (trained output layer): saddle when "
    "an eigenvalue is negative; global_minimum when the loss is zero (L >= 0 certifies it); "
    "spurious_minimum when all eigenvalues are positive and the loss is not zero (for a student "
    "narrower than the teacher this includes its best fit); degenerate when zero eigenvalues "
    "leave the verdict to higher-order terms"
)


class PointSymmetry(ResultModel):
    """The isotropy subgroup of a point: the permutations (P of neurons, sigma of teacher neurons
    and, for the identity teacher, of input coordinates with them) that fix it."""

    isotropy: str = Field(
        description="product of symmetric groups on the input orbits, acting diagonally on inputs "
        "and neurons (Arjevani & Field's Delta(S6 x S1) written S6 x S1); every transposition behind "
        "it was verified by an explicit neuron permutation"
    )
    input_orbits: list[list[int]] = Field(
        description="teacher neurons (= input coordinates for the identity teacher) grouped by orbit; "
        "singletons when the teacher's rows are not orthonormal (no relabelling applies)"
    )
    neuron_orbits: list[list[int]] = Field(description="student neurons grouped by orbit")
    identical_neurons: list[list[int]] = Field(
        description="groups of neurons with equal incoming (rescaled) and outgoing weights; each adds "
        "the symmetric group on the group to the isotropy"
    )


CONFIDENCE = 0.95
UNCONVERGED_LISTED = 100
"""Random starts listed in `Census.unconverged` (the first ones; every supplied point is listed)."""
FREQUENCY_DESCRIPTION = (
    "how many of the random starts (trials) reached it, with the exact (Clopper-Pearson) 95% "
    "confidence interval for the probability p that a start does: lower = Beta quantile "
    "B(0.025; x, n - x + 1), upper = B(0.975; x + 1, n - x) for x of n (lower 0 when x = 0, upper 1 "
    "when x = n), which covers p at least 95% of the time for every p; 0 of n gives "
    "[0, 1 - 0.025^(1/n)], about [0, 3.7 / n]. Null when the job had no random starts"
)


class Frequency(ResultModel):
    """x of n random starts, and an exact 95% confidence interval for the probability behind it."""

    count: int = Field(ge=0, description="x: random starts that reached it")
    trials: int = Field(ge=1, description="n: random starts of the census")
    estimate: float = Field(ge=0, le=1, description="x / n")
    lower: float = Field(ge=0, le=1, description="Clopper-Pearson: B(0.025; x, n - x + 1), 0 when x = 0")
    upper: float = Field(ge=0, le=1, description="Clopper-Pearson: B(0.975; x + 1, n - x), 1 when x = n")


class Multiplet(ResultModel):
    """Hessian eigenvalues equal within the tolerance, counted once with their multiplicity."""

    value: float = Field(description="mean of the grouped eigenvalues")
    multiplicity: int = Field(ge=1)
    spread: float = Field(ge=0, description="largest minus smallest of the grouped eigenvalues")


class CriticalPoint(ResultModel):
    """One distinct critical point (up to symmetry), as the first start that reached it left it."""

    loss: float
    gradient_norm: float
    kind: PointKind = Field(description=KIND_DESCRIPTION)
    index: int = Field(ge=0, description="number of negative Hessian eigenvalues")
    nullity: int = Field(ge=0, description="number of zero Hessian eigenvalues besides the rescalings")
    rescaling_directions: int = Field(
        ge=0, description="exact null directions (w_i, a_i) -> (c w_i, a_i / c) removed before classifying"
    )
    eigenvalues: list[float] = Field(description="all Hessian eigenvalues, ascending")
    weights: list[list[float]] = Field(description="W: rows are the neurons w_i")
    output_weights: list[float] = Field(description="a (all ones when the output layer is fixed)")
    symmetry: PointSymmetry
    starts: int = Field(ge=0, description="random starts that reached this point (up to symmetry)")
    supplied: list[int] = Field(description="indices of user `points` that reached it")
    probability: Frequency | None = Field(None, description=FREQUENCY_DESCRIPTION)
    spectrum: list[Multiplet] | None = Field(
        None,
        description="`eigenvalues` grouped: sorted neighbours within multiplicity_tolerance "
        "max|lambda| + 1e-9 are one eigenvalue (a chain of such neighbours is one group). At a point "
        "whose isotropy contains S_m the multiplicities are the dimensions of the isotypic "
        "components (Arjevani & Field 2020): for k = d, a = 1, the global minimum has 1/4 - 1/(2 pi) "
        "with multiplicity d(d - 1)/2, 1/4 + 1/(2 pi) with d(d - 3)/2, two of multiplicity d - 1 "
        "and two simple ones",
    )


class Unconverged(ResultModel):
    """A start or supplied point that did not reach the gradient tolerance."""

    start: int | None = Field(
        description="random start index s (with start_seeds per_start, drawn from the seed seed + s), "
        "or null for a supplied point"
    )
    supplied: int | None = Field(description="index in `points`, or null for a random start")
    loss: float | None = Field(description="null when not finite")
    gradient_norm: float | None = Field(description="null when not finite")
    reason: str


class Census(ResultModel):
    """Where the starts went: each distinct critical point once, and the starts that did not converge."""

    starts: int
    supplied: int
    converged: int
    points: list[CriticalPoint] = Field(description="sorted by loss, then index")
    reached: dict[str, int] = Field(description="starts (and supplied points) per kind of point reached")
    unconverged: list[Unconverged] = Field(
        description=f"the first {UNCONVERGED_LISTED} random starts that did not converge, in order, "
        "then every supplied point that did not (`did_not_converge` counts all the starts)"
    )
    lbfgs_iterations: dict[str, float] = Field(
        description="median, max (and mean) L-BFGS iterations per start"
    )
    did_not_converge: Frequency | None = Field(
        None, description=f"random starts that did not converge: {FREQUENCY_DESCRIPTION}"
    )
    kinds: dict[str, Frequency] | None = Field(
        None,
        description="random starts per kind of point reached (global_minimum, spurious_minimum, "
        f"saddle, degenerate), each {FREQUENCY_DESCRIPTION}",
    )
    chunks: int | None = Field(
        None, description="chunks the starts ran in (each a batch of batched L-BFGS, then tallied)"
    )


class EmbeddedPoint(ResultModel):
    """A width-m point built from a width-r critical point without changing the function."""

    construction: Literal["split", "zero_outgoing"] = Field(
        description="split: neuron `neuron` replaced by m - r + 1 copies with outgoing weights "
        "lambda a and (1 - lambda) a / (m - r); zero_outgoing: m - r neurons with a = 0 and random "
        "incoming weights"
    )
    neuron: int | None = Field(description="the split neuron (one per neuron orbit)")
    ratio: float | None = Field(description="the split ratio lambda")
    loss: float
    loss_change: float = Field(description="loss minus the base point's loss")
    gradient_norm: float
    critical: bool = Field(description="gradient norm at most the gradient tolerance")
    index: int = Field(ge=0)
    nullity: int = Field(ge=0)
    kind: PointKind | Literal["not_critical"] = Field(description=KIND_DESCRIPTION)
    smallest_eigenvalues: list[float] = Field(
        description="the 4 smallest Hessian eigenvalues (rescalings removed)"
    )


class SubspaceCount(ResultModel):
    """A count of affine subspaces of symmetry-induced points (Simsek et al. 2021), by formula and
    by building every construction."""

    name: Literal["T", "G"] = Field(
        description="T(r*, m) = sum_{j=r*..m} C(m, j) r*! S(j, r*): zero-loss subspaces from the "
        "teacher (width r* = k, minimal when no two teacher rows are parallel), maps of the m neurons onto the r* teacher neurons or to zero-outgoing; "
        "G(r, m) = r! S(m, r): split subspaces of a width-r critical point, the surjections of the m "
        "neurons onto its r neurons (S: Stirling numbers of the second kind)"
    )
    r: int
    m: int
    formula: int
    enumerated: int | None = Field(
        None, description="constructions built and counted; null when not enumerated (size limit)"
    )
    distinct: bool | None = Field(None, description="all enumerated points differ pairwise")
    all_critical: bool | None = Field(
        None, description="every enumerated point has gradient norm within the gradient tolerance"
    )
    max_gradient_norm: float | None = None
    max_loss_change: float | None = Field(
        None, description="largest |loss - base loss| over the enumerated points"
    )


class EmbeddingBase(ResultModel):
    """The embeddings of one census point."""

    point: int = Field(description="index into census.points")
    loss: float
    points: list[EmbeddedPoint]
    G: SubspaceCount


class EmbeddingStudy(ResultModel):
    width: int
    T: SubspaceCount
    bases: list[EmbeddingBase]


class LandscapeResult(ResultModel):
    """Critical points of a teacher-student loss and, when asked, their symmetry-induced embeddings."""

    kind: Literal["landscape"] = "landscape"
    problem: str
    loss: str = Field(description="population (closed form) or samples (empirical loss on N points)")
    dtype: Literal["float64"] = "float64"
    device: str
    d: int
    teacher_neurons: int
    student_width: int
    output_weights: str
    census: Census
    embedding: EmbeddingStudy | None = None
    seconds: dict[str, float] = Field(
        description="wall-clock time of each stage (search: L-BFGS, Newton and deduplication, whose "
        "share is also given as deduplication; census: the distinct points' spectra and symmetry)"
    )
