"""The loss a landscape job studies: the teacher, the population or sample loss at any student
width, and the starts of the search (docs/science.md §2)."""

from dataclasses import dataclass

import torch

from schemas.landscape import LandscapeSpec
from workers.compute.device import resolve_device
from workers.compute.landscape.loss import Layout, Objective, PopulationLoss, SampleLoss

F64 = torch.float64


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
