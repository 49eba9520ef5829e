"""Finite-width kernels against the limit without storing either, against the dense comparison.

Run from the repository root: `python bench/empirical.py [--sizes 2048 4096 8192] [--width 2048]`.
For n points uniform on S^9, one random two-layer ReLU net of width m (first layer trained,
float64) and H_inf, each case in a fresh process (its peak resident memory its own):

- ours: `matrix_free_comparison`: H_m applied through its Jacobian, |H_m - H_inf|_2 by block
  Krylov on the difference, lambda_min(H_m) by LOBPCG, both to relative residual 1e-4, and
  |H_m - H_inf|_F from both kernels' rows;
- the alternative: both kernels assembled, `eigvalsh` of H_m and of the difference, the
  Frobenius norm of the difference (`dense_comparison`), where 3 n^2 floats fit.

Each row gives seconds and peak memory of both, the ratio, and how far ours is from dense.
"""

import argparse
import json
import platform
import resource
import subprocess
import sys
import time

import torch

from schemas.networks import TwoLayerNet
from workers.compute.datasets import uniform_sphere
from workers.compute.kernels.analytic import KernelBlocks, analytic_kernel, kernel_of
from workers.compute.kernels.empirical import neuron_blocks, two_layer_empirical
from workers.compute.kernels.operator import BlockKernel, NeuronKernel
from workers.compute.kernels.width_study import Accuracy, dense_comparison, matrix_free_comparison

D, TOLERANCE, PRODUCTS = 10, 1e-4, 400


def case(method: str, n: int, m: int) -> dict[str, float]:
    """One comparison in this process: `ours` or `dense`."""
    net = TwoLayerNet()
    X = uniform_sphere(n, D, torch.Generator().manual_seed(0)).to(torch.float64)
    generator = torch.Generator().manual_seed(1)
    start = time.perf_counter()
    if method == "dense":
        H_m = two_layer_empirical(net, X, m, generator, lambda _done: None)
        frobenius, operator, lambda_min, residual = dense_comparison(H_m, analytic_kernel(net, X))
    else:
        W = torch.cat([block for _, block in neuron_blocks(net, X, m, generator)])
        H = BlockKernel(KernelBlocks(kernel_of(net, D), X))
        limits = Accuracy(TOLERANCE, PRODUCTS)
        found = matrix_free_comparison(NeuronKernel(net, X, W), H, limits, lambda _message, _at: None)
        frobenius, operator, lambda_min, residual = found
    return {
        "seconds": time.perf_counter() - start,
        "frobenius": frobenius,
        "operator": operator,
        "lambda_min": lambda_min,
        "residual": residual,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def measure(method: str, n: int, m: int) -> dict[str, float]:
    """`case` in a fresh interpreter, so that peak memory is the case's own."""
    command = [sys.executable, __file__, "--case", method, "--sizes", str(n), "--width", str(m)]
    output = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(output.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 4096, 8192])
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--dense-max", type=int, default=8192)
    parser.add_argument("--case", choices=["ours", "dense"])
    arguments = parser.parse_args()
    m = arguments.width
    if arguments.case:
        print(json.dumps(case(arguments.case, arguments.sizes[0], m)))
        return
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, m = {m}")
    print(
        "| n | ours (s) | peak MiB | residual | dense (s) | peak MiB | dense/ours | gaps: F, 2, lambda_min |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for n in arguments.sizes:
        ours = measure("ours", n, m)
        row = f"| {n} | {ours['seconds']:.1f} | {ours['peak_mib']:.0f} | {ours['residual']:.1e} |"
        if n <= arguments.dense_max:
            dense = measure("dense", n, m)
            gaps = [
                abs(ours[key] - dense[key]) / max(abs(dense[key]), 1e-300)
                for key in ("frobenius", "operator", "lambda_min")
            ]
            row += (
                f" {dense['seconds']:.1f} | {dense['peak_mib']:.0f} | {dense['seconds'] / ours['seconds']:.2f} |"
                f" {', '.join(f'{gap:.1e}' for gap in gaps)} |"
            )
        else:
            row += f" not run ({3 * 8 * n * n / 2**30:.0f} GiB of matrices) | | | |"
        print(row, flush=True)


if __name__ == "__main__":
    main()
