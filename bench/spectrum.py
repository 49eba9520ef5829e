"""The ends of a large kernel's spectrum without storing the kernel, against the dense solver.

Run from the repository root: `python bench/spectrum.py [--device cuda] [--sizes 8192 32768]`.
For n points uniform on S^9 and the first-layer ReLU NTK H_inf (float64), each case runs in a
fresh process (so that its peak resident memory is its own) and prints:

- ours: the k = 32 largest and smallest eigenpairs by LOBPCG on the kernel applied block by block
  (`spectrum_of` on a `BlockKernel`, relative residual 1e-4, the bottom preconditioned from a
  float32 sketch of n / 10 vectors): seconds, products with the kernel (the sketch counts one),
  seconds per product, the worst relative residual reached, and peak memory;
- the alternative: the kernel assembled and `torch.linalg.eigvalsh` on it (all eigenvalues),
  where its 8 n^2 bytes (and the solver's workspace) fit; its lambda_min against ours.

Above `--dense-max` points only ours runs, with at most `--products` products: at n = 32768 the
dense kernel is 8 GiB before the solver's copies. Peak memory is resident memory on the CPU, the
GPU's peak allocation on cuda.
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
from workers.compute.device import synchronize
from workers.compute.kernels.analytic import KernelBlocks, analytic_kernel, kernel_of
from workers.compute.kernels.operator import BlockKernel
from workers.compute.spectrum import spectrum_of

D, K, TOLERANCE = 10, 32, 1e-4


def peak_mib(device: torch.device) -> float:
    """Peak memory of this process: the GPU's allocations on cuda, else resident memory."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def case(method: str, n: int, device: torch.device, products: int) -> dict[str, float]:
    """One measurement in this process: `ours` or `dense`."""
    X = uniform_sphere(n, D, torch.Generator().manual_seed(0)).to(device)
    start = time.perf_counter()
    if method == "dense":
        values = torch.linalg.eigvalsh(analytic_kernel(TwoLayerNet(), X))
        synchronize(device)
        return {
            "seconds": time.perf_counter() - start,
            "lambda_min": float(values[0]),
            "peak_mib": peak_mib(device),
        }
    pairs = spectrum_of(BlockKernel(KernelBlocks(kernel_of(TwoLayerNet(), D), X)), K, TOLERANCE, products)
    synchronize(device)
    seconds = time.perf_counter() - start
    assert pairs.residuals is not None
    return {
        "seconds": seconds,
        "products": pairs.products,
        "per_product": seconds / pairs.products,
        "residual": float((pairs.residuals / pairs.values.abs()).max()),
        "converged": pairs.converged,
        "lambda_min": float(pairs.values[-1]),
        "peak_mib": peak_mib(device),
    }


def measure(method: str, n: int, device: str, products: int) -> dict[str, float]:
    """`case` in a fresh interpreter, so that peak memory is the case's own."""
    command = [sys.executable, __file__, "--case", method, "--sizes", str(n), "--device", device]
    output = subprocess.run(
        [*command, "--products", str(products)], capture_output=True, text=True, check=True
    )
    return json.loads(output.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[8192, 32768])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dense-max", type=int, default=8192)
    parser.add_argument("--products", type=int, default=400)
    parser.add_argument("--case", choices=["ours", "dense"])
    arguments = parser.parse_args()
    if arguments.case:
        print(
            json.dumps(
                case(arguments.case, arguments.sizes[0], torch.device(arguments.device), arguments.products)
            )
        )
        return
    print(
        f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print(
        "| n | ours (s) | products | s/product | worst rel. residual | peak MiB | dense eigvalsh (s) | peak MiB | dense/ours | lambda_min rel. gap |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in arguments.sizes:
        ours = measure("ours", n, arguments.device, arguments.products)
        row = (
            f"| {n} | {ours['seconds']:.1f} | {ours['products']} | {ours['per_product']:.2f} | "
            f"{ours['residual']:.1e}{'' if ours['converged'] else ' (budget spent)'} | {ours['peak_mib']:.0f} |"
        )
        if n <= arguments.dense_max:
            dense = measure("dense", n, arguments.device, arguments.products)
            gap = abs(ours["lambda_min"] - dense["lambda_min"]) / dense["lambda_min"]
            row += f" {dense['seconds']:.1f} | {dense['peak_mib']:.0f} | {dense['seconds'] / ours['seconds']:.2f} | {gap:.1e} |"
        else:
            row += f" not run ({8 * n * n / 2**30:.0f} GiB matrix) | | | |"
        print(row, flush=True)


if __name__ == "__main__":
    main()
