"""Dataset specs: where the inputs X (n, d) and labels y (n,) of an experiment come from.

Two kinds meet here: input distributions (`sphere`, `gaussian`) that take a label rule
(`random_sign`, `linear`, `relu_teacher`, `concept`), and data that bring their own labels (the
small real datasets shipped with scikit-learn, and `inline` data sent in the request). Every
dataset can hold out a seeded test set (`test_fraction`). `n` (all points, training and test
together) and `d` are known without loading anything, so budgets are checked at the API.
"""

from typing import Annotated, Any, Literal, NamedTuple

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from schemas.common import SEED_MAX, SpecModel, seed_field

N_MAX = 2**17
D_MAX = 4096
INLINE_VALUES_MAX = 1_000_000
VALUE_MAX = 1e12
NOISE_MAX = 1e3
CONCEPT_SCALE_MAX = 64.0
TEST_FRACTION_MAX = 0.9
TRAIN_MIN = 2

Value = Annotated[float, Field(ge=-VALUE_MAX, le=VALUE_MAX)]


def held_out_count(n: int, test_fraction: float) -> int:
    """Points held out for testing: test_fraction * n rounded half up, and at least one when a
    test set is asked for (test_fraction > 0)."""
    if test_fraction == 0:
        return 0
    return max(1, int(test_fraction * n + 0.5))


def _split_leaves_a_training_set(n: int, test_fraction: float) -> None:
    n_test = held_out_count(n, test_fraction)
    if n - n_test < TRAIN_MIN:
        raise ValueError(
            f"test_fraction {test_fraction} of {n} points holds out {n_test} and leaves {n - n_test} "
            f"for training; at least {TRAIN_MIN} are needed: lower test_fraction or use more points"
        )


def _split_fits_n(test_fraction: float, info: ValidationInfo) -> float:
    if "n" in info.data:  # otherwise n is invalid and says so itself
        _split_leaves_a_training_set(info.data["n"], test_fraction)
    return test_fraction


def _test_fraction_field() -> Any:
    return Field(
        0.0,
        ge=0.0,
        le=TEST_FRACTION_MAX,
        description="share of the points held out as a seeded test set (rounded half up, at least "
        "one point when > 0); 0: no test set",
    )


# ---------------------------------------------------------------------------------------------
# label rules, for the synthetic input distributions
# ---------------------------------------------------------------------------------------------


def weights_seed_field() -> Any:
    """The optional seed of a label rule's own weights (beta, the teacher, the concept)."""
    return Field(
        None,
        ge=0,
        le=SEED_MAX,
        description="seed of the rule's weights alone; null: they come from the dataset's seed, "
        "after the points, so they change with n and d. Give it to keep one teacher across datasets "
        "of different sizes (e.g. a sweep over n); the label noise still comes from the dataset's seed",
    )


class RandomSignLabels(SpecModel):
    """y_i uniform in {-1, +1}, independent of x_i (random labels: pure memorisation)."""

    rule: Literal["random_sign"] = "random_sign"


class LinearLabels(SpecModel):
    """y_i = <beta, x_i> with beta uniform on the unit sphere."""

    rule: Literal["linear"] = "linear"
    weights_seed: int | None = weights_seed_field()


class ReluTeacherLabels(SpecModel):
    """y_i = k^-1/2 sum_j a_j relu(<v_j, x_i>) + noise * eps_i, a_j uniform in {-1, +1},
    eps_i ~ N(0, 1). The teacher's rows v_j are unit vectors: independent and uniform on the
    sphere (`random`), or orthonormal (`orthonormal`, a Haar-random k-frame, needs k <= d)."""

    rule: Literal["relu_teacher"] = "relu_teacher"
    k: int = Field(4, ge=1, le=1024, description="number of teacher neurons")
    teacher: Literal["random", "orthonormal"] = Field(
        "random", description="rows independent and uniform on the sphere, or orthonormal (k <= d)"
    )
    noise: float = Field(0.0, ge=0.0, le=NOISE_MAX, description="std of Gaussian noise added to each label")
    weights_seed: int | None = weights_seed_field()


class ConceptLabels(SpecModel):
    """Labels from a random member of the concept classes of Allen-Zhu, Li & Liang (NeurIPS 2019)
    with one smooth activation phi, scaled to unit variance over the dataset's points, plus
    Gaussian noise. Formulas in workers/compute/datasets.py (`Concept`)."""

    rule: Literal["concept"] = "concept"
    layers: Literal[2, 3] = Field(
        2,
        description="2: F(x) = sum_i a_i phi(<w_i,x>) <u_i,x>; "
        "3: F(x) = sum_i a_i phi(sum_j v_ij phi(<w_j,x>)) <u_i,x>",
    )
    k: int = Field(4, ge=1, le=1024, description="number of terms (hidden units of the concept)")
    activation: Literal["sin", "exp", "sigmoid", "quadratic"] = Field(
        "sin", description="the smooth activation phi (quadratic: phi(t) = t^2)"
    )
    scale: float = Field(
        1.0,
        gt=0.0,
        le=CONCEPT_SCALE_MAX,
        description="norm of the inner weights w: the largest |<w,x>| on the unit sphere (the paper's "
        "1); typical values are scale/sqrt(d), so sqrt(d) reaches further into phi's nonlinear range",
    )
    noise: float = Field(
        0.0, ge=0.0, le=NOISE_MAX, description="std of Gaussian noise added to the unit-variance labels"
    )
    weights_seed: int | None = weights_seed_field()


LabelRule = Annotated[
    RandomSignLabels | LinearLabels | ReluTeacherLabels | ConceptLabels, Field(discriminator="rule")
]


def _labels_fit_d(labels: LabelRule, info: ValidationInfo) -> LabelRule:
    d = info.data.get("d")
    orthonormal = isinstance(labels, ReluTeacherLabels) and labels.teacher == "orthonormal"
    if orthonormal and d is not None and labels.k > d:
        raise ValueError(f"an orthonormal teacher has at most d = {d} rows, got k = {labels.k}")
    return labels


# ---------------------------------------------------------------------------------------------
# synthetic input distributions
# ---------------------------------------------------------------------------------------------


class RandomInputs(SpecModel):
    """Fields every seeded synthetic input distribution shares."""

    n: int = Field(256, ge=2, le=N_MAX, description="number of points, training and test together")
    d: int = Field(10, ge=2, le=D_MAX, description="input dimension")
    seed: int = seed_field()
    labels: LabelRule = Field(default_factory=RandomSignLabels, description="how labels are made")
    test_fraction: float = _test_fraction_field()

    _check_labels = field_validator("labels")(_labels_fit_d)
    _check_split = field_validator("test_fraction")(_split_fits_n)


class SphereDataset(RandomInputs):
    """n points drawn uniformly on the unit sphere S^{d-1} (normalised Gaussians), seeded."""

    name: Literal["sphere"] = "sphere"


class GaussianDataset(RandomInputs):
    """n points x ~ N(0, I_d / d) (so E|x|^2 = 1), optionally projected to the unit sphere, seeded."""

    name: Literal["gaussian"] = "gaussian"
    project_to_sphere: bool = Field(False, description="divide each point by its norm (before labelling)")


# ---------------------------------------------------------------------------------------------
# real data shipped with scikit-learn
# ---------------------------------------------------------------------------------------------


class RealDataInfo(NamedTuple):
    """What scikit-learn's loader returns, known here without loading it."""

    n: int
    d: int
    class_sizes: tuple[int, ...] | None  # points of class 0, 1, ...; None for a regression target


REAL_DATA: dict[str, RealDataInfo] = {
    "digits": RealDataInfo(1797, 64, (178, 182, 177, 183, 181, 182, 181, 179, 174, 180)),
    "iris": RealDataInfo(150, 4, (50, 50, 50)),
    "wine": RealDataInfo(178, 13, (59, 71, 48)),
    "breast_cancer": RealDataInfo(569, 30, (212, 357)),
    "diabetes": RealDataInfo(442, 10, None),
}


def _points_available(name: object, classes: object) -> int | None:
    """Points of dataset `name` in `classes` (all when None); None when either is invalid."""
    info = REAL_DATA.get(name) if isinstance(name, str) else None
    if info is None:
        return None
    if classes is None:
        return info.n
    sizes = info.class_sizes
    if sizes is None or not isinstance(classes, list):
        return None
    if not all(isinstance(c, int) and 0 <= c < len(sizes) for c in classes):
        return None
    return sum(sizes[c] for c in set(classes))


class RealDataset(SpecModel):
    """A small real dataset shipped with scikit-learn (no download): digits (8x8 images, 10
    classes), iris (3 classes), wine (3), breast_cancer (2), diabetes (regression).

    In order: keep the points of `classes`; draw `n` of them without replacement (seeded, the
    dataset's order kept); hold out the test set; standardise each feature with the training
    points' mean and std (a feature constant on them becomes 0); project each point to the unit
    sphere. Labels: when exactly two classes are kept (listed, or all of a two-class dataset),
    +1 for the first and -1 for the second; otherwise the class label itself (0., 1., ...);
    diabetes' target is standardised with the training points' mean and std.
    """

    name: Literal["digits", "iris", "wine", "breast_cancer", "diabetes"]
    classes: list[int] | None = Field(
        None,
        min_length=1,
        max_length=10,
        description="class labels (0, 1, ...) to keep, in this order; two classes give labels +1/-1; "
        "default: all; not for diabetes (regression)",
    )
    n: int = Field(
        None,  # `_default_n` fills in every point of the kept classes
        ge=2,
        le=N_MAX,
        description="number of points (training and test together), drawn without replacement "
        "(seeded); default: all points of the kept classes",
    )
    standardize: bool = Field(True, description="per-feature zero mean and unit variance (training points)")
    project_to_sphere: bool = Field(True, description="divide each point by its norm, after standardising")
    seed: int = seed_field("seed of the subsample and of the train/test split")
    test_fraction: float = _test_fraction_field()

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "digits", "classes": [3, 8], "n": 200}]}
    )

    @model_validator(mode="before")
    @classmethod
    def _default_n(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("n") is None:
            name = data.get("name")
            # with a bad class (its own error says so) n is bounded by the whole dataset
            available = _points_available(name, data.get("classes")) or _points_available(name, None)
            if available is not None:
                data = {**data, "n": available}
        return data

    @field_validator("classes")
    @classmethod
    def _classes_exist(cls, classes: list[int] | None, info: ValidationInfo) -> list[int] | None:
        name = info.data.get("name")
        if classes is None or name is None:
            return classes
        sizes = REAL_DATA[name].class_sizes
        if sizes is None:
            raise ValueError(f"{name} is a regression dataset: it has no classes to keep")
        for c in classes:
            if not 0 <= c < len(sizes):
                raise ValueError(
                    f"class {c} does not exist in {name}, whose classes are 0 to {len(sizes) - 1}"
                )
        if len(set(classes)) != len(classes):
            raise ValueError(f"classes must not repeat, got {classes}")
        return classes

    @field_validator("n")
    @classmethod
    def _n_fits(cls, n: int, info: ValidationInfo) -> int:
        if "name" not in info.data or "classes" not in info.data:
            return n  # the name or the classes are invalid and say so themselves
        name, classes = info.data["name"], info.data["classes"]
        available = _points_available(name, classes)
        if available is not None and n > available:
            which = "" if classes is None else f" in classes {classes}"
            raise ValueError(f"n = {n} is more than the {available} points of {name}{which}")
        return n

    _check_split = field_validator("test_fraction")(_split_fits_n)

    @property
    def d(self) -> int:
        return REAL_DATA[self.name].d


# ---------------------------------------------------------------------------------------------
# data sent in the request
# ---------------------------------------------------------------------------------------------


class InlineDataset(SpecModel):
    """Data sent in the request: X (n, d) as rows, y (n,)."""

    name: Literal["inline"] = "inline"
    X: list[list[Value]] = Field(min_length=2, max_length=N_MAX, description="inputs, one row each")
    y: list[Value] = Field(min_length=2, max_length=N_MAX, description="labels, one per row of X")
    seed: int = seed_field("seed of the train/test split")
    test_fraction: float = _test_fraction_field()

    @field_validator("X")
    @classmethod
    def _rectangular(cls, X: list[list[float]]) -> list[list[float]]:
        d = len(X[0])
        if not 1 <= d <= D_MAX:
            raise ValueError(f"X rows must have between 1 and {D_MAX} values, got {d}")
        for i, row in enumerate(X):
            if len(row) != d:
                raise ValueError(f"X is not rectangular: row 0 has {d} values, row {i} has {len(row)}")
        if len(X) * d > INLINE_VALUES_MAX:
            raise ValueError(f"X has {len(X) * d} values, more than {INLINE_VALUES_MAX}")
        return X

    @field_validator("y")
    @classmethod
    def _one_label_per_row(cls, y: list[float], info: ValidationInfo) -> list[float]:
        if "X" in info.data and len(y) != len(info.data["X"]):
            raise ValueError(f"y has {len(y)} values but X has {len(info.data['X'])} rows")
        return y

    @field_validator("test_fraction")
    @classmethod
    def _split_fits(cls, test_fraction: float, info: ValidationInfo) -> float:
        if "X" in info.data:
            _split_leaves_a_training_set(len(info.data["X"]), test_fraction)
        return test_fraction

    @property
    def n(self) -> int:
        return len(self.X)

    @property
    def d(self) -> int:
        return len(self.X[0])


DatasetSpec = Annotated[
    SphereDataset | GaussianDataset | RealDataset | InlineDataset, Field(discriminator="name")
]
