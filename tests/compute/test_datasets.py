"""Datasets as a researcher asks for them: the points and labels each spec promises, seeded, with
the statistics it claims, a held-out test set when asked, and a clear 422 naming the field when a
request cannot be honoured. CPU, float64 unless a test says otherwise.

Statistical tolerances are 5 standard errors of the estimate they bound; every draw is seeded,
so each check is deterministic and would fail by chance with probability below 1e-6.
"""

import math

import pytest
import torch
from pydantic import ValidationError
from sklearn import datasets as sklearn_datasets

from schemas import JobRequest, KernelSpec
from schemas.datasets import (
    REAL_DATA,
    ConceptLabels,
    GaussianDataset,
    InlineDataset,
    RealDataset,
    ReluTeacherLabels,
    SphereDataset,
    held_out_count,
)
from workers.compute.datasets import ACTIVATIONS, Concept, Data, draw_concept, make_data, teacher_rows

F64 = torch.float64
CPU = torch.device("cpu")


def data_of(spec: object, dtype: torch.dtype = F64) -> Data:
    return make_data(spec, dtype, CPU)  # type: ignore[arg-type]


def error_locs(dataset: dict) -> list[tuple]:
    """Where the API's 422 points, for a kernel job on `dataset`."""
    with pytest.raises(ValidationError) as info:
        JobRequest.model_validate({"spec": {"kind": "kernel", "dataset": dataset}})
    return [error["loc"][3:] for error in info.value.errors()]  # drop ("spec", "kernel", "dataset")


def error_message(dataset: dict) -> str:
    with pytest.raises(ValidationError) as info:
        JobRequest.model_validate({"spec": {"kind": "kernel", "dataset": dataset}})
    return str(info.value)


def rows(X: torch.Tensor) -> set[tuple[float, ...]]:
    return {tuple(row) for row in X.tolist()}


SPECS = {
    "sphere": SphereDataset(n=64, d=5, seed=1),
    "gaussian": GaussianDataset(n=64, d=5, seed=1),
    "gaussian_projected": GaussianDataset(n=64, d=5, seed=1, project_to_sphere=True),
    "relu_teacher": SphereDataset(n=64, d=5, seed=1, labels=ReluTeacherLabels(k=3, noise=0.1)),
    "orthonormal_teacher": SphereDataset(
        n=64, d=5, seed=1, labels=ReluTeacherLabels(k=5, teacher="orthonormal")
    ),
    "concept": GaussianDataset(n=64, d=5, seed=1, labels=ConceptLabels(layers=3, activation="sigmoid")),
    "digits": RealDataset(name="digits", n=100, seed=1),
    "iris": RealDataset(name="iris", classes=[0, 2], seed=1),
    "wine": RealDataset(name="wine", n=60, seed=1),
    "breast_cancer": RealDataset(name="breast_cancer", n=80, seed=1),
    "diabetes": RealDataset(name="diabetes", n=50, seed=1),
    "inline": InlineDataset(X=[[1.0, 2.0], [3.0, 4.0], [5.0, 7.0]], y=[1.0, -1.0, 0.5]),
}
SEEDED = [name for name in SPECS if name not in ("inline", "iris")]  # iris above keeps every point


# ---------------------------------------------------------------------------------------------
# shapes and seeds
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SPECS)
def test_every_dataset_has_the_promised_shapes(name: str) -> None:
    spec = SPECS[name]
    data = data_of(spec)
    assert data.X.shape == (spec.n, spec.d) and data.y.shape == (spec.n,)
    assert data.X.dtype == data.y.dtype == F64
    assert bool(torch.isfinite(data.X).all() and torch.isfinite(data.y).all())
    assert data.X_test is None and data.y_test is None
    # the budget is priced without loading anything
    assert KernelSpec(dataset=spec).cost().flops > 0


def test_data_come_in_the_dtype_asked_for() -> None:
    spec = RealDataset(name="wine", n=20, test_fraction=0.25)
    single, double = data_of(spec, torch.float32), data_of(spec)
    assert single.X.dtype == single.y.dtype == single.X_test.dtype == single.y_test.dtype == torch.float32
    torch.testing.assert_close(single.X, double.X.float())
    torch.testing.assert_close(single.y_test, double.y_test.float())


@pytest.mark.parametrize("name", SEEDED)
def test_same_seed_same_data_other_seed_other_data(name: str) -> None:
    spec = SPECS[name]
    first, again = data_of(spec), data_of(spec)
    other = data_of(spec.model_copy(update={"seed": 2}))
    assert torch.equal(first.X, again.X) and torch.equal(first.y, again.y)
    assert not torch.equal(first.X, other.X)


def test_existing_specs_keep_their_data() -> None:
    """New options leave the data of existing specs alone: the relu teacher still draws X, then
    V uniform on the sphere, then the signs a, and adds no noise by default."""
    data = data_of(SphereDataset(n=32, d=4, seed=3, labels=ReluTeacherLabels(k=2)))
    g = torch.Generator().manual_seed(3)
    X = torch.randn(32, 4, generator=g, dtype=F64)
    X = X / X.norm(dim=1, keepdim=True)
    V = torch.randn(2, 4, generator=g, dtype=F64)
    V = V / V.norm(dim=1, keepdim=True)
    a = torch.randint(0, 2, (2,), generator=g).to(F64) * 2 - 1
    torch.testing.assert_close(data.X, X, atol=0, rtol=0)
    torch.testing.assert_close(data.y, torch.relu(X @ V.T) @ a / math.sqrt(2), atol=0, rtol=0)


@pytest.mark.parametrize("n", [32, 200])
def test_a_weights_seed_keeps_one_teacher_for_every_dataset_size(n: int) -> None:
    """With `weights_seed` the rule's weights come from their own generator: the teacher (and the
    concept, up to its scale over the n points) drawn from Generator(weights_seed) alone labels
    datasets of every size and point seed; without it they follow the points (another n, another
    teacher)."""
    teacher = ReluTeacherLabels(k=3, weights_seed=11)
    data = data_of(SphereDataset(n=n, d=5, seed=n, labels=teacher))
    weights = torch.Generator().manual_seed(11)
    V = teacher_rows(teacher, 5, weights)
    a = torch.randint(0, 2, (3,), generator=weights).to(F64) * 2 - 1
    torch.testing.assert_close(data.y, torch.relu(data.X @ V.T) @ a / math.sqrt(3), atol=0, rtol=0)

    concept = ConceptLabels(layers=3, k=4, scale=2.0, weights_seed=11)
    data = data_of(SphereDataset(n=n, d=5, seed=n, labels=concept))
    F = draw_concept(concept, 5, torch.Generator().manual_seed(11))(data.X)
    assert float(torch.corrcoef(torch.stack([F, data.y]))[0, 1]) == pytest.approx(1.0, abs=1e-12)

    small, large = (
        data_of(SphereDataset(n=size, d=5, seed=0, labels=ReluTeacherLabels(k=3))) for size in (32, 200)
    )
    assert torch.equal(small.X, large.X[:32]) and not torch.allclose(small.y, large.y[:32])


# ---------------------------------------------------------------------------------------------
# input distributions
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        SphereDataset(n=128, d=7, seed=0),
        GaussianDataset(n=128, d=7, seed=0, project_to_sphere=True),
        RealDataset(name="digits", n=128, test_fraction=0.25),
        RealDataset(name="diabetes", standardize=False, test_fraction=0.25),
    ],
    ids=["sphere", "gaussian_projected", "digits", "diabetes_raw"],
)
def test_points_promised_on_the_sphere_have_unit_norm(spec: object) -> None:
    data = data_of(spec)
    for X in (data.X, data.X_test) if data.X_test is not None else (data.X,):
        torch.testing.assert_close(X.norm(dim=1), torch.ones(X.shape[0], dtype=F64), atol=1e-14, rtol=0)


def test_sphere_dataset_points_have_unit_norm() -> None:
    data = make_data(SphereDataset(n=64, d=10, seed=0), F64, CPU)
    assert data.X.shape == (64, 10) and data.y.shape == (64,)
    torch.testing.assert_close(data.X.norm(dim=1), torch.ones(64, dtype=F64), atol=1e-14, rtol=0)


def test_gaussian_points_have_covariance_identity_over_d() -> None:
    """x ~ N(0, I/d), so d x x^T has mean I. For the sample mean of n = 4096 points the standard
    error of entry (a, b) of d C is sqrt(2/n) on the diagonal (Var z^2 = 2) and sqrt(1/n) off it
    (Var z_a z_b = 1); of d |x|^2 averaged, sqrt(2/(n d)); of the mean of d^1/2 x_a, sqrt(1/n)."""
    n, d = 4096, 8
    X = data_of(GaussianDataset(n=n, d=d, seed=5)).X
    C = d * X.T @ X / n
    se = torch.full((d, d), math.sqrt(1 / n), dtype=F64) + torch.eye(d, dtype=F64) * (
        math.sqrt(2 / n) - math.sqrt(1 / n)
    )
    assert bool(((C - torch.eye(d, dtype=F64)).abs() <= 5 * se).all())
    assert abs(float((X * X).sum(dim=1).mean()) - 1) <= 5 * math.sqrt(2 / (n * d))
    assert float((math.sqrt(d) * X.mean(dim=0)).abs().max()) <= 5 * math.sqrt(1 / n)
    # not on the sphere unless asked: |x|^2 has std sqrt(2/d) = 0.5 here
    assert float((X * X).sum(dim=1).std()) > 0.4


# ---------------------------------------------------------------------------------------------
# label rules
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("k", "d"), [(3, 7), (7, 7), (1, 2)])
def test_orthonormal_teacher_has_orthonormal_rows(k: int, d: int) -> None:
    rule = ReluTeacherLabels(k=k, teacher="orthonormal")
    V = teacher_rows(rule, d, torch.Generator().manual_seed(4))
    assert V.shape == (k, d)
    torch.testing.assert_close(V @ V.T, torch.eye(k, dtype=F64), atol=1e-14, rtol=0)


def test_random_teacher_has_unit_rows_that_are_not_orthogonal() -> None:
    V = teacher_rows(ReluTeacherLabels(k=6), 4, torch.Generator().manual_seed(4))
    torch.testing.assert_close(V.norm(dim=1), torch.ones(6, dtype=F64), atol=1e-14, rtol=0)
    assert float((V @ V.T - torch.eye(6, dtype=F64)).abs().max()) > 0.1


@pytest.mark.parametrize(
    "labels",
    [ReluTeacherLabels(k=4, teacher="orthonormal"), ConceptLabels(layers=3, activation="exp")],
    ids=["relu_teacher", "concept"],
)
def test_label_noise_has_the_asked_std(labels: ReluTeacherLabels | ConceptLabels) -> None:
    """Same seed with and without noise: same points, and labels that differ by noise * eps with
    eps ~ N(0, 1). The sample std of n = 4096 normals has standard error sigma / sqrt(2 n)."""
    n, sigma = 4096, 0.5
    spec = SphereDataset(n=n, d=6, seed=8, labels=labels)
    clean = data_of(spec)
    noisy = data_of(spec.model_copy(update={"labels": labels.model_copy(update={"noise": sigma})}))
    assert torch.equal(clean.X, noisy.X)
    residual = noisy.y - clean.y
    assert abs(float(residual.std()) - sigma) <= 5 * sigma / math.sqrt(2 * n)
    assert abs(float(residual.mean())) <= 5 * sigma / math.sqrt(n)


PYTHON_ACTIVATIONS = {
    "sin": math.sin,
    "exp": math.exp,
    "sigmoid": lambda t: 1 / (1 + math.exp(-t)),
    "quadratic": lambda t: t * t,
}


def test_concept_matches_its_formula_on_hand_weights() -> None:
    """F(x) = sum_i a_i phi(<w_i,x>) <u_i,x>, and with three layers
    F(x) = sum_i a_i phi(sum_j v_ij phi(<w_j,x>)) <u_i,x>, written out term by term."""
    X = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, -1.0]], dtype=F64)
    a = torch.tensor([1.0, -1.0], dtype=F64)
    W = torch.tensor([[0.5, 1.0], [-1.0, 2.0]], dtype=F64)
    U = torch.tensor([[1.0, 1.0], [0.0, 3.0]], dtype=F64)
    V = torch.tensor([[0.3, -0.7], [2.0, 0.1]], dtype=F64)
    a_, V_ = a.tolist(), V.tolist()
    for name, phi in PYTHON_ACTIVATIONS.items():
        two, three = [], []
        for x in X.tolist():
            proj_w = [sum(wa * xa for wa, xa in zip(w, x, strict=True)) for w in W.tolist()]
            proj_u = [sum(ua * xa for ua, xa in zip(u, x, strict=True)) for u in U.tolist()]
            two.append(sum(a_[i] * phi(proj_w[i]) * proj_u[i] for i in range(2)))
            hidden = [sum(V_[i][j] * phi(proj_w[j]) for j in range(2)) for i in range(2)]
            three.append(sum(a_[i] * phi(hidden[i]) * proj_u[i] for i in range(2)))
        concept = Concept(phi=ACTIVATIONS[name], a=a, W=W, U=U)
        torch.testing.assert_close(concept(X), torch.tensor(two, dtype=F64), atol=1e-12, rtol=0)
        concept = Concept(phi=ACTIVATIONS[name], a=a, W=W, U=U, V=V)
        torch.testing.assert_close(concept(X), torch.tensor(three, dtype=F64), atol=1e-12, rtol=0)


def test_concept_weights_follow_the_papers_normalisation() -> None:
    """|w_i| = scale, |u_i| = |v_i| = 1, a_i = +-1: at scale 1 every |<w_i, x>| <= 1 on the sphere."""
    for scale in (1.0, 3.0):
        rule = ConceptLabels(layers=3, k=5, scale=scale)
        concept = draw_concept(rule, 7, torch.Generator().manual_seed(0))
        assert concept.W.shape == concept.U.shape == (5, 7) and concept.V.shape == (5, 5)
        torch.testing.assert_close(concept.W.norm(dim=1), torch.full((5,), scale, dtype=F64))
        torch.testing.assert_close(concept.U.norm(dim=1), torch.ones(5, dtype=F64))
        torch.testing.assert_close(concept.V.norm(dim=1), torch.ones(5, dtype=F64))
        assert set(concept.a.tolist()) <= {1.0, -1.0}
    assert draw_concept(ConceptLabels(layers=2), 7, torch.Generator().manual_seed(0)).V is None


@pytest.mark.parametrize("layers", [2, 3])
@pytest.mark.parametrize("activation", ["sin", "exp", "sigmoid", "quadratic"])
def test_concept_labels_have_unit_variance(layers: int, activation: str) -> None:
    """Noiseless labels are F / std(F) over the n points: variance exactly 1 there; a held-out
    quarter keeps about unit variance (wide tolerance: F is heavy-tailed for quadratic)."""
    labels = ConceptLabels(layers=layers, activation=activation, k=6)
    data = data_of(SphereDataset(n=1024, d=8, seed=2, labels=labels))
    assert float(data.y.var(correction=0)) == pytest.approx(1.0, abs=1e-12)
    split = data_of(SphereDataset(n=1024, d=8, seed=2, labels=labels, test_fraction=0.25))
    assert 0.5 < float(split.y_test.var()) < 2.0
    # different activations give different concepts from the same weights
    other = "sin" if activation != "sin" else "sigmoid"
    relabelled = data_of(
        SphereDataset(n=1024, d=8, seed=2, labels=labels.model_copy(update={"activation": other}))
    )
    assert float((data.y - relabelled.y).abs().max()) > 0.1


def test_concept_that_overflows_is_an_error_the_user_can_act_on() -> None:
    labels = ConceptLabels(layers=3, activation="exp", scale=64.0)
    with pytest.raises(ValueError, match=r"overflows.*lower the scale"):
        data_of(SphereDataset(n=64, d=2, seed=0, labels=labels))


# ---------------------------------------------------------------------------------------------
# real data shipped with scikit-learn
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", REAL_DATA)
def test_the_static_table_matches_scikit_learn(name: str) -> None:
    bunch = getattr(sklearn_datasets, f"load_{name}")()
    info = REAL_DATA[name]
    assert bunch.data.shape == (info.n, info.d)
    if info.class_sizes is not None:
        assert tuple(torch.bincount(torch.tensor(bunch.target)).tolist()) == info.class_sizes
    spec = RealDataset(name=name)  # type: ignore[arg-type]
    assert (spec.n, spec.d) == (info.n, info.d)


def test_raw_real_data_are_scikit_learns() -> None:
    bunch = sklearn_datasets.load_wine()
    data = data_of(RealDataset(name="wine", standardize=False, project_to_sphere=False))
    torch.testing.assert_close(data.X, torch.tensor(bunch.data, dtype=F64), atol=0, rtol=0)
    torch.testing.assert_close(data.y, torch.tensor(bunch.target, dtype=F64), atol=0, rtol=0)


def test_two_classes_become_plus_and_minus_one() -> None:
    spec = RealDataset(name="digits", classes=[3, 8])
    data = data_of(spec)
    assert spec.n == data.X.shape[0] == 183 + 174
    assert set(data.y.tolist()) == {1.0, -1.0}
    assert int((data.y == 1).sum()) == 183  # classes[0] = 3 is +1
    flipped = data_of(RealDataset(name="digits", classes=[8, 3]))
    assert torch.equal(flipped.y, -data.y)
    # a two-class dataset's own classes, in order
    assert set(data_of(RealDataset(name="breast_cancer", n=40)).y.tolist()) == {1.0, -1.0}


def test_other_class_selections_keep_the_class_labels() -> None:
    three = data_of(RealDataset(name="wine", classes=[2, 0, 1]))
    assert torch.equal(three.y, torch.tensor(sklearn_datasets.load_wine().target, dtype=F64))
    one = RealDataset(name="iris", classes=[1], n=20, seed=3)
    assert set(data_of(one).y.tolist()) == {1.0}
    assert RealDataset(name="digits", classes=[0, 1, 2]).n == 178 + 182 + 177


def test_real_data_are_standardised_on_the_training_points() -> None:
    """Each feature of the training points has mean 0 and std 1, except the digits pixels that
    are constant on them (the image corners), which become 0."""
    spec = RealDataset(name="digits", n=300, project_to_sphere=False, test_fraction=0.2, seed=4)
    data = data_of(spec)
    mean, std = data.X.mean(dim=0), data.X.std(dim=0, correction=0)
    constant = std < 1e-12
    assert 0 < int(constant.sum()) < 10 and bool((data.X[:, constant] == 0).all())
    torch.testing.assert_close(mean, torch.zeros(64, dtype=F64), atol=1e-12, rtol=0)
    torch.testing.assert_close(std[~constant], torch.ones(int((~constant).sum()), dtype=F64))
    assert bool(torch.isfinite(data.X_test).all())


def test_diabetes_target_is_standardised() -> None:
    data = data_of(RealDataset(name="diabetes", test_fraction=0.1))
    assert float(data.y.mean()) == pytest.approx(0.0, abs=1e-12)
    assert float(data.y.std(correction=0)) == pytest.approx(1.0, abs=1e-12)
    assert abs(float(data.y_test.mean())) < 0.5 and 0.5 < float(data.y_test.std()) < 1.5


def test_subsampling_draws_distinct_points_in_the_datasets_order() -> None:
    full = data_of(RealDataset(name="iris", standardize=False, project_to_sphere=False))
    sub = data_of(RealDataset(name="iris", n=30, seed=9, standardize=False, project_to_sphere=False))
    index = [full.X.tolist().index(row) for row in sub.X.tolist()]
    assert index == sorted(set(index)) and len(index) == 30  # iris has one duplicate row: found first
    assert torch.equal(sub.y, full.y[index])


# ---------------------------------------------------------------------------------------------
# the held-out test set
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "fraction", "held_out"),
    [(100, 0.0, 0), (100, 0.25, 25), (10, 0.25, 3), (10, 0.01, 1), (5, 0.5, 3), (20, 0.9, 18)],
)
def test_held_out_count_rounds_half_up_and_holds_out_at_least_one(
    n: int, fraction: float, held_out: int
) -> None:
    assert held_out_count(n, fraction) == held_out


@pytest.mark.parametrize(
    "spec",
    [
        SphereDataset(n=200, d=4, seed=6, labels=ConceptLabels()),
        GaussianDataset(n=200, d=4, seed=6, labels=ReluTeacherLabels(noise=0.3)),
        InlineDataset(
            X=[[float(i), float(i * i)] for i in range(10)], y=[float(i) for i in range(10)], seed=1
        ),
        RealDataset(name="breast_cancer", n=200, seed=6, standardize=False, project_to_sphere=False),
    ],
    ids=["sphere", "gaussian", "inline", "breast_cancer_raw"],
)
def test_the_split_partitions_the_same_points(spec: object) -> None:
    """test_fraction only moves points to the test set: training and test points are disjoint,
    together they are the unsplit data, and both keep the original order."""
    whole = data_of(spec)
    n = whole.X.shape[0]
    split = data_of(spec.model_copy(update={"test_fraction": 0.3}))  # type: ignore[attr-defined]
    n_test = held_out_count(n, 0.3)
    assert split.X.shape == (n - n_test, whole.X.shape[1]) and split.y.shape == (n - n_test,)
    assert split.X_test.shape == (n_test, whole.X.shape[1]) and split.y_test.shape == (n_test,)
    assert not rows(split.X) & rows(split.X_test)
    train = [whole.X.tolist().index(row) for row in split.X.tolist()]
    test = [whole.X.tolist().index(row) for row in split.X_test.tolist()]
    assert train == sorted(train) and test == sorted(test)
    assert sorted(train + test) == list(range(n))
    assert torch.equal(split.y, whole.y[train]) and torch.equal(split.y_test, whole.y[test])
    other = data_of(spec.model_copy(update={"test_fraction": 0.3, "seed": 11}))  # type: ignore[attr-defined]
    if isinstance(spec, InlineDataset):  # the seed moves only the split
        assert not torch.equal(other.X_test, split.X_test)


# ---------------------------------------------------------------------------------------------
# requests that cannot be honoured: 422 with the field path
# ---------------------------------------------------------------------------------------------


def test_ragged_X_is_rejected() -> None:
    bad = {"name": "inline", "X": [[1.0, 0.0], [0.0]], "y": [1.0, 2.0]}
    assert error_locs(bad) == [("inline", "X")]
    assert "not rectangular: row 0 has 2 values, row 1 has 1" in error_message(bad)


def test_nan_in_X_is_rejected() -> None:
    bad = {"name": "inline", "X": [[1.0, 0.0], [0.0, float("nan")]], "y": [1.0, 2.0]}
    assert error_locs(bad) == [("inline", "X", 1, 1)]


def test_wrong_y_length_is_rejected() -> None:
    bad = {"name": "inline", "X": [[1.0, 0.0], [0.0, 1.0]], "y": [1.0, 2.0, 3.0]}
    assert error_locs(bad) == [("inline", "y")]
    assert "y has 3 values but X has 2 rows" in error_message(bad)


def test_a_class_that_does_not_exist_is_named() -> None:
    assert error_locs({"name": "iris", "classes": [0, 3]}) == [("iris", "classes")]
    assert "class 3 does not exist in iris" in error_message({"name": "iris", "classes": [0, 3]})
    assert error_locs({"name": "wine", "classes": [1, 1]}) == [("wine", "classes")]
    regression = {"name": "diabetes", "classes": [0, 1]}
    assert error_locs(regression) == [("diabetes", "classes")]
    assert "regression" in error_message(regression)


def test_n_larger_than_a_real_dataset_is_rejected() -> None:
    assert error_locs({"name": "iris", "n": 151}) == [("iris", "n")]
    assert "n = 151 is more than the 150 points of iris" in error_message({"name": "iris", "n": 151})
    two = {"name": "digits", "classes": [0, 1], "n": 361}
    assert error_locs(two) == [("digits", "n")]
    assert "360 points of digits in classes [0, 1]" in error_message(two)
    assert RealDataset(name="digits", classes=[0, 1], n=360).n == 360


def test_orthonormal_teacher_needs_k_at_most_d() -> None:
    bad = {"name": "gaussian", "d": 3, "labels": {"rule": "relu_teacher", "k": 4, "teacher": "orthonormal"}}
    assert error_locs(bad) == [("gaussian", "labels")]
    assert "at most d = 3 rows, got k = 4" in error_message(bad)
    assert error_locs({**bad, "name": "sphere"}) == [("sphere", "labels")]


@pytest.mark.parametrize(
    "bad",
    [
        {"name": "sphere", "n": 3, "test_fraction": 0.5},
        {"name": "gaussian", "n": 20, "test_fraction": 0.95},
        {"name": "iris", "n": 2, "test_fraction": 0.1},
        {"name": "inline", "X": [[1.0], [2.0], [3.0]], "y": [1.0, 2.0, 3.0], "test_fraction": 0.5},
    ],
    ids=["sphere", "above_max", "iris", "inline"],
)
def test_a_split_must_leave_two_training_points(bad: dict) -> None:
    assert error_locs(bad) == [(bad["name"], "test_fraction")]
    if bad["test_fraction"] <= 0.9:
        assert "at least 2 are needed" in error_message(bad)


def test_unknown_real_dataset_and_options_are_rejected() -> None:
    assert error_locs({"name": "mnist"}) == [()]
    assert error_locs({"name": "iris", "project": True}) == [("iris", "project")]
    assert error_locs({"name": "sphere", "labels": {"rule": "concept", "layers": 4}}) == [
        ("sphere", "labels", "concept", "layers")
    ]
