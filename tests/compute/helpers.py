"""Points for the kernel and spectrum tests, drawn on the sphere and seeded."""

import torch

from workers.compute.datasets import uniform_sphere

F64 = torch.float64


def points(n: int = 10, d: int = 5, seed: int = 0, scale: bool = True) -> torch.Tensor:
    """n points on the sphere, with norms in [0.5, 1.5] unless `scale` is off."""
    generator = torch.Generator().manual_seed(seed)
    X = uniform_sphere(n, d, generator)
    return X * (0.5 + torch.rand(n, 1, generator=generator, dtype=F64)) if scale else X


def sphere(n: int, d: int, seed: int) -> torch.Tensor:
    return uniform_sphere(n, d, torch.Generator().manual_seed(seed))
