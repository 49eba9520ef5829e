"""Datasets: the inputs X (n, d) and labels y (n,) of an experiment, made from a dataset spec.

Random data is drawn in float64 on the CPU from a seeded torch.Generator and then moved, so a
spec gives the same points on every device and in every dtype.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from schemas.datasets import (
    DatasetSpec,
    InlineDataset,
    LinearLabels,
    RandomSignLabels,
    ReluTeacherLabels,
    SphereDataset,
)


@dataclass(frozen=True)
class Data:
    X: torch.Tensor  # (n, d)
    y: torch.Tensor  # (n,)


def uniform_sphere(n: int, d: int, generator: torch.Generator) -> torch.Tensor:
    """n points uniform on S^{d-1}: standard Gaussians divided by their norms. (n, d), float64."""
    Z = torch.randn(n, d, generator=generator, dtype=torch.float64)
    return Z / Z.norm(dim=1, keepdim=True)


def random_sign_labels(_rule: RandomSignLabels, X: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """y_i uniform in {-1, +1}, independent of x_i (pure memorisation)."""
    return torch.randint(0, 2, (X.shape[0],), generator=g).to(torch.float64) * 2 - 1


def linear_labels(_rule: LinearLabels, X: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """y_i = <beta, x_i>, beta uniform on the unit sphere."""
    beta = uniform_sphere(1, X.shape[1], g)[0]
    return X @ beta


def relu_teacher_labels(rule: ReluTeacherLabels, X: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """y = k^-1/2 sum_j a_j relu(<v_j, x>), v_j uniform on the sphere, a_j uniform in {-1, +1}."""
    V = uniform_sphere(rule.k, X.shape[1], g)
    a = torch.randint(0, 2, (rule.k,), generator=g).to(torch.float64) * 2 - 1
    return torch.relu(X @ V.T) @ a / math.sqrt(rule.k)


LABELS: dict[str, Callable[..., torch.Tensor]] = {
    "random_sign": random_sign_labels,
    "linear": linear_labels,
    "relu_teacher": relu_teacher_labels,
}


def sphere_data(spec: SphereDataset) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(spec.seed)
    X = uniform_sphere(spec.n, spec.d, generator)
    return X, LABELS[spec.labels.rule](spec.labels, X, generator)


def inline_data(spec: InlineDataset) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.tensor(spec.X, dtype=torch.float64), torch.tensor(spec.y, dtype=torch.float64)


DATASETS: dict[str, Callable[..., tuple[torch.Tensor, torch.Tensor]]] = {
    "sphere": sphere_data,
    "inline": inline_data,
}


def make_data(spec: DatasetSpec, dtype: torch.dtype, device: torch.device) -> Data:
    """The dataset a spec names, in `dtype` on `device`."""
    X, y = DATASETS[spec.name](spec)
    return Data(X=X.to(device=device, dtype=dtype), y=y.to(device=device, dtype=dtype))
