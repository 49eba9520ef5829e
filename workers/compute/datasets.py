"""Datasets: the inputs X (n, d) and labels y (n,) of an experiment, made from a dataset spec,
with an optional held-out test set.

One generator per spec, `torch.Generator().manual_seed(spec.seed)`, drives everything in a fixed
order: the points, then the label rule's weights and noise, then the train/test split; a rule
with `weights_seed` draws its weights from a generator of their own instead (the same teacher
for every n and every seed of the points). So equal
specs give equal data, and `test_fraction` changes only which points are held out. Random data
is drawn in float64 on the CPU and moved at the end, so a spec gives the same points on every
device and in every dtype.
"""

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch

from schemas.datasets import (
    REAL_DATA,
    ConceptLabels,
    DatasetSpec,
    GaussianDataset,
    InlineDataset,
    LinearLabels,
    RandomSignLabels,
    RealDataset,
    ReluTeacherLabels,
    SphereDataset,
    held_out_count,
)

F64 = torch.float64


@dataclass(frozen=True)
class Data:
    X: torch.Tensor  # (n_train, d): every point when there is no test set
    y: torch.Tensor  # (n_train,)
    X_test: torch.Tensor | None = None  # (n_test, d)
    y_test: torch.Tensor | None = None  # (n_test,)

    def to(self, dtype: torch.dtype, device: torch.device) -> "Data":
        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device=device, dtype=dtype)

        X, y = self.X.to(device=device, dtype=dtype), self.y.to(device=device, dtype=dtype)
        return Data(X=X, y=y, X_test=move(self.X_test), y_test=move(self.y_test))


# ---------------------------------------------------------------------------------------------
# input distributions
# ---------------------------------------------------------------------------------------------


def uniform_sphere(n: int, d: int, generator: torch.Generator) -> torch.Tensor:
    """n points uniform on S^{d-1}: standard Gaussians divided by their norms. (n, d), float64."""
    Z = torch.randn(n, d, generator=generator, dtype=F64)
    return Z / Z.norm(dim=1, keepdim=True)


def gaussian_points(n: int, d: int, generator: torch.Generator) -> torch.Tensor:
    """n points x ~ N(0, I_d / d), so E|x|^2 = 1. (n, d), float64."""
    return torch.randn(n, d, generator=generator, dtype=F64) / math.sqrt(d)


# ---------------------------------------------------------------------------------------------
# label rules: (rule, X (n, d), generator) -> y (n,)
# ---------------------------------------------------------------------------------------------


def random_signs(size: int, g: torch.Generator) -> torch.Tensor:
    return torch.randint(0, 2, (size,), generator=g).to(F64) * 2 - 1


def random_sign_labels(_rule: RandomSignLabels, X: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """y_i uniform in {-1, +1}, independent of x_i (pure memorisation)."""
    return random_signs(X.shape[0], g)


def weights_generator(
    rule: LinearLabels | ReluTeacherLabels | ConceptLabels, g: torch.Generator
) -> torch.Generator:
    """The generator of a label rule's weights: its own, seeded by `weights_seed`, so that they do
    not depend on how many points were drawn before them; else the dataset's `g`."""
    return g if rule.weights_seed is None else torch.Generator().manual_seed(rule.weights_seed)


def linear_labels(rule: LinearLabels, X: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """y_i = <beta, x_i>, beta uniform on the unit sphere."""
    beta = uniform_sphere(1, X.shape[1], weights_generator(rule, g))[0]
    return X @ beta


def teacher_rows(rule: ReluTeacherLabels, d: int, g: torch.Generator) -> torch.Tensor:
    """The teacher's unit rows V (k, d): independent and uniform on the sphere, or orthonormal
    (Q of the QR factorisation of a Gaussian (d, k) matrix, signs fixed by diag(R) so the frame
    is Haar-distributed; Mezzadri 2007)."""
    if rule.teacher == "orthonormal":
        Q, R = torch.linalg.qr(torch.randn(d, rule.k, generator=g, dtype=F64))
        return (Q * torch.sign(torch.diagonal(R))).T
    return uniform_sphere(rule.k, d, g)


def relu_teacher_labels(rule: ReluTeacherLabels, X: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """y = k^-1/2 sum_j a_j relu(<v_j, x>) + noise * eps, a_j uniform in {-1, +1}, eps ~ N(0, 1)."""
    weights = weights_generator(rule, g)
    V = teacher_rows(rule, X.shape[1], weights)
    a = random_signs(rule.k, weights)
    y = torch.relu(X @ V.T) @ a / math.sqrt(rule.k)
    eps = torch.randn(X.shape[0], generator=g, dtype=F64)  # drawn even without noise: same split
    return y + rule.noise * eps


ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "sin": torch.sin,
    "exp": torch.exp,
    "sigmoid": torch.sigmoid,
    "quadratic": torch.square,
}


@dataclass(frozen=True)
class Concept:
    """A random concept of Allen-Zhu, Li & Liang (NeurIPS 2019, the two- and three-layer concept
    classes), with one smooth activation phi:

        two layers:   F(x) = sum_{i<=k} a_i phi(<w_i, x>) <u_i, x>
        three layers: F(x) = sum_{i<=k} a_i phi(G_i(x)) <u_i, x>,   G_i(x) = sum_{j<=k} v_ij phi(<w_j, x>)

    a_i uniform in {-1, +1}; w_i uniform on the sphere of radius `scale` in R^d; u_i uniform on
    the unit sphere of R^d; the rows v_i uniform on the unit sphere of R^k. With scale = 1 and
    unit inputs every |<w, x>| <= 1, the paper's normalisation, which keeps even exp tame. The
    three-layer form is the paper's sum_i a_i Phi_i(sum_j v1_ij phi1_j(<w1_j, x>))
    (sum_j v2_ij phi2_j(<w2_j, x>)) with Phi = phi1 = phi and phi2 the identity, which makes the
    second factor the linear form <u_i, x> as in the two-layer class.
    """

    phi: Callable[[torch.Tensor], torch.Tensor]
    a: torch.Tensor  # (k,)
    W: torch.Tensor  # (k, d): the w_i (two layers) or the hidden layer's w_j (three)
    U: torch.Tensor  # (k, d): the linear forms u_i
    V: torch.Tensor | None = None  # (k, k): v_ij, three layers only

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        """F(x) for the rows of X (n, d). (n,)"""
        hidden = self.phi(X @ self.W.T)  # (n, k): phi(<w_j, x>)
        if self.V is not None:
            hidden = self.phi(hidden @ self.V.T)  # (n, k): phi(G_i(x))
        return (hidden * (X @ self.U.T)) @ self.a


def draw_concept(rule: ConceptLabels, d: int, g: torch.Generator) -> Concept:
    """The concept's weights, drawn in the order a, W, U, V."""
    a = random_signs(rule.k, g)
    W = rule.scale * uniform_sphere(rule.k, d, g)
    U = uniform_sphere(rule.k, d, g)
    V = uniform_sphere(rule.k, rule.k, g) if rule.layers == 3 else None
    return Concept(phi=ACTIVATIONS[rule.activation], a=a, W=W, U=U, V=V)


def concept_labels(rule: ConceptLabels, X: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """y = F(x) / s + noise * eps, eps ~ N(0, 1), s the (population) std of F over the dataset's
    n points, training and test together: there the noiseless labels have variance exactly 1."""
    F = draw_concept(rule, X.shape[1], weights_generator(rule, g))(X)
    if not bool(torch.isfinite(F).all()):
        raise ValueError(
            f"the concept overflows with {rule.activation} at scale {rule.scale}: lower the scale"
        )
    peak = F.abs().max()
    s = (F / peak).std(correction=0) * peak if peak > 0 else peak  # no overflow in F^2
    eps = torch.randn(X.shape[0], generator=g, dtype=F64)
    return (F / s if s > 0 else F) + rule.noise * eps


LABELS: dict[str, Callable[..., torch.Tensor]] = {
    "random_sign": random_sign_labels,
    "linear": linear_labels,
    "relu_teacher": relu_teacher_labels,
    "concept": concept_labels,
}


# ---------------------------------------------------------------------------------------------
# the train/test split and the preprocessing fitted on the training points
# ---------------------------------------------------------------------------------------------


def split(X: torch.Tensor, y: torch.Tensor, test_fraction: float, g: torch.Generator) -> Data:
    """Hold out held_out_count(n, test_fraction) points chosen by a seeded permutation; both parts
    keep the original order."""
    n_test = held_out_count(X.shape[0], test_fraction)
    if n_test == 0:
        return Data(X=X, y=y)
    order = torch.randperm(X.shape[0], generator=g)
    test, train = order[:n_test].sort().values, order[n_test:].sort().values
    return Data(X=X[train], y=y[train], X_test=X[test], y_test=y[test])


def standardised_features(data: Data) -> Data:
    """x -> (x - mean) / std per feature, with the mean and (population) std of the training
    points; a feature constant on them (std <= 1e-12 of its largest |value|) becomes 0."""
    mean, std = data.X.mean(dim=0), data.X.std(dim=0, correction=0)
    constant = std <= 1e-12 * data.X.abs().amax(dim=0)
    factor = torch.where(constant, 0.0, 1.0 / std)
    X_test = None if data.X_test is None else (data.X_test - mean) * factor
    return replace(data, X=(data.X - mean) * factor, X_test=X_test)


def standardised_target(data: Data) -> Data:
    """y -> (y - mean) / std with the training labels' mean and (population) std."""
    mean, std = data.y.mean(), data.y.std(correction=0)
    scale = std if std > 0 else torch.ones_like(std)
    y_test = None if data.y_test is None else (data.y_test - mean) / scale
    return replace(data, y=(data.y - mean) / scale, y_test=y_test)


def on_sphere(X: torch.Tensor, what: str) -> torch.Tensor:
    """Each row divided by its norm; a zero row has no direction and is an error."""
    norms = X.norm(dim=1, keepdim=True)
    zero = (norms[:, 0] == 0).nonzero()
    if len(zero) > 0:
        raise ValueError(
            f"point {int(zero[0])} of the {what} is the zero vector, which has no direction on the "
            "sphere: set project_to_sphere to false"
        )
    return X / norms


# ---------------------------------------------------------------------------------------------
# datasets: (spec, generator) -> Data
# ---------------------------------------------------------------------------------------------


def sphere_data(spec: SphereDataset, g: torch.Generator) -> Data:
    X = uniform_sphere(spec.n, spec.d, g)
    return split(X, LABELS[spec.labels.rule](spec.labels, X, g), spec.test_fraction, g)


def gaussian_data(spec: GaussianDataset, g: torch.Generator) -> Data:
    X = gaussian_points(spec.n, spec.d, g)
    if spec.project_to_sphere:
        X = X / X.norm(dim=1, keepdim=True)
    return split(X, LABELS[spec.labels.rule](spec.labels, X, g), spec.test_fraction, g)


@functools.cache
def load_real(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's bundled dataset `name` (read from its installed files): X (N, d) float64
    and the target (N,), int64 class labels or float64 values. Callers index (copy) them."""
    from sklearn import datasets  # only real-data jobs pay for importing scikit-learn

    bunch = getattr(datasets, f"load_{name}")()
    info = REAL_DATA[name]
    if bunch.data.shape != (info.n, info.d):
        raise ValueError(
            f"scikit-learn's {name} has shape {bunch.data.shape}, not the {(info.n, info.d)} this "
            "version of ntkdyn expects"
        )
    return torch.tensor(bunch.data, dtype=F64), torch.tensor(bunch.target)


def real_data(spec: RealDataset, g: torch.Generator) -> Data:
    """Keep the classes, subsample, split, standardise, project: in that order (RealDataset)."""
    X, target = load_real(spec.name)
    sizes = REAL_DATA[spec.name].class_sizes
    kept = spec.classes if spec.classes is not None else list(range(len(sizes or ())))
    rows = torch.arange(X.shape[0])
    if spec.classes is not None:
        rows = torch.isin(target, torch.tensor(spec.classes)).nonzero()[:, 0]
    if spec.n < len(rows):
        rows = rows[torch.randperm(len(rows), generator=g)[: spec.n].sort().values]
    X, target = X[rows], target[rows]
    two_classes = sizes is not None and len(kept) == 2
    y = torch.where(target == kept[0], 1.0, -1.0).to(F64) if two_classes else target.to(F64)
    data = split(X, y, spec.test_fraction, g)
    if spec.standardize:
        data = standardised_features(data)
    if sizes is None:
        data = standardised_target(data)
    if spec.project_to_sphere:
        X_test = None if data.X_test is None else on_sphere(data.X_test, f"{spec.name} test set")
        data = replace(data, X=on_sphere(data.X, f"{spec.name} training set"), X_test=X_test)
    return data


def inline_data(spec: InlineDataset, g: torch.Generator) -> Data:
    X, y = torch.tensor(spec.X, dtype=F64), torch.tensor(spec.y, dtype=F64)
    return split(X, y, spec.test_fraction, g)


DATASETS: dict[str, Callable[[Any, torch.Generator], Data]] = {
    "sphere": sphere_data,
    "gaussian": gaussian_data,
    **{name: real_data for name in REAL_DATA},
    "inline": inline_data,
}


def make_data(spec: DatasetSpec, dtype: torch.dtype, device: torch.device) -> Data:
    """The dataset a spec names, in `dtype` on `device`; X, y are the training points (all of
    them when test_fraction = 0, and then X_test, y_test are None)."""
    generator = torch.Generator().manual_seed(spec.seed)
    return DATASETS[spec.name](spec, generator).to(dtype, device)


def sign_labels(*labels: torch.Tensor | None) -> bool:
    """Every label given (test labels may be absent) is +1 or -1: a classification, whose
    error rate is worth reporting."""
    y = torch.cat([part for part in labels if part is not None])
    return bool(((y == 1) | (y == -1)).all())
