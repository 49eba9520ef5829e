"""The loss a landscape job studies: the teacher, the population or sample loss at any student
width, and the starts of the search (docs/science.md §2)."""

from collections.abc import Iterator
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


class Draws:
    """The standard normal draws behind the random starts, taken chunk by chunk: (count, n, d).

    sequential: one generator seeded `seed`, start s its s-th (n, d) block, exactly as one call
    `randn(starts, n, d)` would draw them. torch fills a normal tensor of 16 or more entries 16
    at a time and redraws its last 16 when the size is not a multiple of 16, so the draws are taken
    in blocks of a multiple of 16 entries and the rest in one final draw (then longer than a block),
    which reproduces the single call while holding at most three blocks.
    per_start: start s is `randn(1, n, d)` of its own generator seeded seed + s, the draw of a job
    with one start and that seed."""

    def __init__(self, spec: LandscapeSpec, chunk: int) -> None:
        self.spec = spec
        self.entries = spec.student_width * spec.input_dim
        self.block = 16 * -(-chunk * self.entries // 16)
        self.left = spec.starts * self.entries  # sequential entries not drawn yet
        self.buffer = torch.empty(0, dtype=F64)
        self.generator = torch.Generator().manual_seed(spec.seed)
        self.next = 0  # the next start

    def take(self, count: int) -> torch.Tensor:
        n, d = self.spec.student_width, self.spec.input_dim
        first, self.next = self.next, self.next + count
        if self.spec.start_seeds == "per_start":
            draws = [
                torch.randn(1, n, d, generator=torch.Generator().manual_seed(self.spec.seed + s), dtype=F64)
                for s in range(first, first + count)
            ]
            return torch.cat(draws) if draws else torch.empty(0, n, d, dtype=F64)
        need = count * self.entries
        while self.buffer.numel() < need:
            size = self.left if self.left <= 2 * self.block else self.block
            self.buffer = torch.cat([self.buffer, torch.randn(size, generator=self.generator, dtype=F64)])
            self.left -= size
        taken, self.buffer = self.buffer[:need], self.buffer[need:]
        return taken.reshape(count, n, d)


def initial_points(
    spec: LandscapeSpec, layout: Layout, device: torch.device
) -> Iterator[tuple[range, torch.Tensor]]:
    """The points to search from, chunk by chunk: (positions, theta (chunk, P)). Random starts
    (`start_seeds`, `init`, `init_scale`) take positions 0..starts - 1 in chunks of
    `spec.chunk_size()`; the supplied points follow in one last chunk."""
    n, d = spec.student_width, spec.input_dim
    chunk = spec.chunk_size()
    draws = Draws(spec, chunk)
    for first in range(0, spec.starts, chunk):
        count = min(chunk, spec.starts - first)
        W = draws.take(count)
        if spec.init == "gaussian":
            W = W * spec.init_scale / d**0.5
        else:
            W = W * spec.init_scale / W.norm(dim=-1, keepdim=True)
        yield range(first, first + count), layout.join(W, torch.ones(count, n, dtype=F64)).to(device)
    if spec.points:
        W = torch.tensor([point.weights for point in spec.points], dtype=F64)
        a = torch.tensor(
            [point.output if point.output is not None else [1.0] * n for point in spec.points], dtype=F64
        )
        yield range(spec.starts, spec.starts + len(spec.points)), layout.join(W, a).to(device)
