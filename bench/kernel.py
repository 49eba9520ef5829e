"""How much the closed form H_inf buys over the ways one would otherwise get the first-layer NTK.

Run from the repository root: `python bench/kernel.py`. For n points uniform on S^{d-1} it times
our analytic `relu_ntk_first_layer` (H_inf_ij = x_i.x_j (pi - theta_ij) / (2 pi), Du et al. 2019)
against, in the same run and on the same points:

- Monte Carlo: the finite-width kernel of m = 2^16 Gaussian neurons, (X X^T) * (S S^T) / m, with
  accumulated by `two_layer_empirical` over blocks of neurons, as the service computes its
  `empirical` comparison;
- autograd: the generic route, the Jacobian of f(x) = m^-1/2 sum_r a_r relu(w_r.x) with respect to
  W from torch.func (vmap of jacrev over the inputs), contracted J J^T (smaller m, smallest n
  only: J is n x m d).

Each timing is the best of REPEATS after one warm-up call; the alternative's relative Frobenius
error against H_inf is printed beside its time (it is a random estimate, so it is never exact).
"""

import math
import platform

import torch
from timing import REPEATS, best_time
from torch.func import jacrev, vmap

from schemas.networks import TwoLayerNet
from workers.compute.datasets import uniform_sphere
from workers.compute.kernels.analytic import (
    relu_ntk_first_layer,
)
from workers.compute.kernels.empirical import two_layer_empirical

D = 10
SIZES = (512, 2048)
MONTE_CARLO_WIDTH = 2**16
AUTOGRAD_WIDTH = 4096
AUTOGRAD_SIZES = (512,)
DTYPE = torch.float64  # what the service computes in


def monte_carlo_kernel(X: torch.Tensor, m: int, seed: int) -> torch.Tensor:
    """H_m = (X X^T) * (S S^T) / m over m neurons w_r ~ N(0, I_d), in blocks. X: (n, d) -> (n, n)."""
    return two_layer_empirical(TwoLayerNet(), X, m, torch.Generator().manual_seed(seed), lambda _done: None)


def autograd_kernel(X: torch.Tensor, m: int, seed: int) -> torch.Tensor:
    """J J^T with row i of J = d f(x_i) / d W, per-input Jacobians from torch.func (vmap of
    jacrev, the per-example-gradient idiom). X: (n, d) -> (n, n); J: (n, m d)."""
    generator = torch.Generator().manual_seed(seed)
    W = torch.randn(m, X.shape[1], generator=generator, dtype=DTYPE)  # (m, d)
    a = torch.randint(0, 2, (m,), generator=generator).to(DTYPE) * 2 - 1  # (m,)

    def net(weights: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(weights @ x) @ a / math.sqrt(m)  # scalar f(x)

    J = vmap(jacrev(net), in_dims=(None, 0))(W, X).reshape(X.shape[0], -1)
    return J @ J.T


def relative_error(estimate: torch.Tensor, exact: torch.Tensor) -> float:
    return float(torch.linalg.matrix_norm(estimate - exact) / torch.linalg.matrix_norm(exact))


def main() -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.machine()}, float64")
    print(f"d = {D}; best of {REPEATS} after a warm-up; error = |H_alt - H_inf|_F / |H_inf|_F\n")
    rows: list[tuple[str, float, float, float]] = []
    for n in SIZES:
        X = uniform_sphere(n, D, torch.Generator().manual_seed(n)).to(DTYPE)
        ours, H = best_time(lambda X=X: relu_ntk_first_layer(X))
        alternatives = [
            (f"n={n} vs Monte Carlo m=2^16", lambda X=X: monte_carlo_kernel(X, MONTE_CARLO_WIDTH, 0))
        ]
        if n in AUTOGRAD_SIZES:
            alternatives.append(
                (
                    f"n={n} vs autograd J J^T m={AUTOGRAD_WIDTH}",
                    lambda X=X: autograd_kernel(X, AUTOGRAD_WIDTH, 0),
                )
            )
        for case, compute in alternatives:
            seconds, estimate = best_time(compute)
            rows.append((case, ours, seconds, relative_error(estimate, H)))
    width = max(len(row[0]) for row in rows)
    header = f"| {'case':<{width}} | ours (s) | alternative (s) | ratio (alt/ours) | alt rel. error |"
    print(header)
    print("|" + "|".join("-" * len(cell) for cell in header.split("|")[1:-1]) + "|")
    for case, ours, alternative, error in rows:
        print(
            f"| {case:<{width}} | {ours:8.4f} | {alternative:15.4f} | {alternative / ours:16.0f} | {error:14.2e} |"
        )


if __name__ == "__main__":
    main()
