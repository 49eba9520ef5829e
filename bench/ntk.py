"""Tangent kernels: our closed forms against the obvious alternatives, in one run.

Run from the repository root: `python bench/ntk.py [--device cuda]` (on cuda, the empirical
cases only: the alternative of case 2 is numpy).

1. Empirical NTK of the two-layer ReLU net, both layers trained, n = 1000, d = 64, m = 4096:
   `two_layer_kernel_sum` (two Gram matrices of activation patterns, no autograd) against the
   generic torch.func route `autograd_kernel` (per-input Jacobians by vmap(jacrev), then J J^T),
   on the same weights; the two must agree to rounding.
2. Analytic H_inf in float64, n = 4000, d = 64: `relu_ntk_first_layer` (upper triangle only, in
   cache-sized row blocks, each block of X X^T computed where it is used) against the straightforward numpy one-liner
   `G * (pi - arccos(clip(G, -1, 1))) / (2 pi)` with `G = X X^T` (which, unlike ours, neither
   normalises by the diagonal nor fixes it).

Each time is the best of REPEATS calls after one warm-up call.
"""

import argparse
import platform

import numpy as np
import torch
from timing import best_time

from schemas.networks import TwoLayerNet
from workers.compute.datasets import uniform_sphere
from workers.compute.kernels.analytic import relu_ntk_first_layer
from workers.compute.kernels.empirical import autograd_kernel, two_layer_kernel_sum
from workers.compute.networks import init_params


def empirical_case(dtype: torch.dtype, device: torch.device) -> tuple[str, float, float, float]:
    n, d, m = 1000, 64, 4096
    network = TwoLayerNet(trained="both")
    X = uniform_sphere(n, d, torch.Generator().manual_seed(0)).to(dtype).to(device)
    params = {
        name: value.to(device)
        for name, value in init_params(network, d, m, torch.Generator().manual_seed(1), dtype).items()
    }
    ours = best_time(lambda: two_layer_kernel_sum(network, X, params["W"]) / m, device)[0]
    theirs = best_time(lambda: autograd_kernel(network, params, X), device)[0]
    closed = two_layer_kernel_sum(network, X, params["W"]) / m
    gap = float((closed - autograd_kernel(network, params, X)).abs().max() / closed.abs().max())
    return f"empirical NTK n={n} d={d} m={m} both layers, {str(dtype)[6:]}, {device}", ours, theirs, gap


def analytic_case() -> tuple[str, float, float, float]:
    n, d = 4000, 64
    X = uniform_sphere(n, d, torch.Generator().manual_seed(0))
    Xn = X.numpy()

    def one_liner() -> np.ndarray:
        G = Xn @ Xn.T
        return G * (np.pi - np.arccos(np.clip(G, -1, 1))) / (2 * np.pi)

    ours = best_time(lambda: relu_ntk_first_layer(X))[0]
    theirs = best_time(one_liner)[0]
    gap = float(np.abs(relu_ntk_first_layer(X).numpy() - one_liner()).max())
    return f"analytic H_inf n={n} d={d}, float64", ours, theirs, gap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    device = torch.device(parser.parse_args().device)
    print(
        f"torch {torch.__version__}, numpy {np.__version__}, {torch.get_num_threads()} threads, {platform.machine()}"
    )
    print("| case | ours (ms) | alternative (ms) | ratio (alt/ours) | max relative gap |")
    print("|---|---|---|---|---|")
    cases = [empirical_case(torch.float64, device), empirical_case(torch.float32, device)]
    if device.type == "cpu":
        cases.append(analytic_case())
    for case, ours, theirs, gap in cases:
        print(f"| {case} | {ours * 1e3:.1f} | {theirs * 1e3:.1f} | {theirs / ours:.1f} | {gap:.1e} |")


if __name__ == "__main__":
    main()
