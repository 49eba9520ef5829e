"""The one torch-free home of what a job costs and of the execution constants behind it: the
workers run with these numbers and the API prices jobs with them, so the two cannot drift apart.
Estimates are in floating-point operations (flop) and peak bytes; Python and dispatch overheads
are counted as flop-equivalents at the ~5e10 a second of the measured worker."""

from pydantic import BaseModel

MIB = 2**20
GIB = 2**30

# overheads: flop-equivalents of the Python around one unit of work
STEP_OVERHEAD = 1e7
"""Flop-equivalent of the Python and dispatch around one training step (~200 us measured)."""
EVALUATION_OVERHEAD = 5e6
"""Flop-equivalent of torchdiffeq's Python around one vector-field evaluation (~100 us measured)."""
ITERATION_OVERHEAD = 5e5
"""Flop-equivalent of the Python around one discrete step in function space (~10 us measured)."""

# execution constants: the workers run with them, the estimates count with them
EMPIRICAL_CHUNK = 4096
"""Neurons drawn per block when a two-layer empirical kernel is accumulated (bounds its memory)."""
BATCH_BYTES = 256 * MIB
"""Starts are processed in batches whose temporaries (pair tensors, Hessians) fit in this."""
LBFGS_MEMORY = 10
"""Curvature pairs the batched L-BFGS of the landscape search keeps per start."""
HESSIAN_PRODUCTS = 40
"""Hessian-vector products (power-method iterations) per point behind the convex comparison's
`auto` learning rates."""

# kernel spectra beyond what is stored: LOBPCG on the kernel applied block by block
BLOCK_ENTRIES = {"cpu": 2**21, "cuda": 2**27}
"""Entries per row block of a matrix-free kernel product: 16 MiB of float64 temporaries on a CPU
(the cost is the arccos, not the memory traffic), 1 GiB on a GPU (enough work per launch)."""
EMPIRICAL_K = 8
"""Eigenpairs at each end of a finite-width kernel applied matrix-free, for its lambda_min: at
n = 4200, m = 2048 (sphere, d = 10) 4 took 221 products and 38 s to 1e-4, 8 took 195 and 24 s,
16 took 150 and 37 s."""
EMPIRICAL_PRODUCTS = 200
"""Products LOBPCG takes for lambda_min of H_m at the default tolerance (the estimate's count):
its bottom is a Marchenko-Pastur-like cluster, slowest when m (d + 1) is near n: measured 106
(m = 8192) to 195 (m = 2048) at n = 4200; 400 (the default cap) at m = 512 left the residual at
2.5e-2 with lambda_min within 1.5e-5 of dense eigvalsh."""
KRYLOV_BLOCK = 8
"""Vectors per product of the block Krylov iteration for |H_m - H_inf|_2 (matrix-free)."""
KRYLOV_PRODUCTS = 30
"""Products that iteration takes at the default tolerance 1e-4 (the estimate's count): 7 for
H_m - H_inf at n = 4200, m = 512 to 1e-3 (residual 5e-4); 21 for a Wigner matrix at n = 400."""
SKETCH_RANK = 256
"""Columns of the random sketch behind the Nystrom preconditioner of the bottom of a stored
kernel's spectrum (float64), and the fewest for one applied matrix-free (`sketch_rank`)."""
SKETCH_MAX = 4096
"""The most columns of a matrix-free kernel's float32 sketch (`sketch_rank`)."""


ANALYTIC_SKETCH = 10
"""An analytic kernel's sketch has n / ANALYTIC_SKETCH vectors (`sketch_rank`)."""
EMPIRICAL_SKETCH = 4
"""A finite-width kernel's sketch has n / EMPIRICAL_SKETCH vectors (`sketch_rank`): at n = 4200
(sphere, d = 10), m = 2048 took 181 products with 256 float64 vectors, 177 with n / 10 and 132
with n / 4; m = 512 (m d near n) stopped at the 400-product cap at residual 1.5e-2, 5.5e-3 and
3.9e-4."""


def sketch_rank(n: int, divisor: int) -> int:
    """Columns of the float32 sketch behind the Nystrom preconditioner of a matrix-free kernel's
    bottom, n / divisor within [SKETCH_RANK, SKETCH_MAX]. The preconditioned bottom converges
    at a rate set by lambda_r / lambda_min, and a dot-product kernel's top directions grow with
    n (on S^9, the harmonics up to degree 5 are 2717 directions above the bottom's cluster at
    n = 32768): measured at n = 32768, r = 1024 left the worst residual at 7e-3 after 120
    products (~3 s each), r = 3072 reached 1e-4 in ~80; at n = 8192, r = 256 took 145 products
    and r = 1024 took 89 (bench/spectrum.py)."""
    return max(SKETCH_RANK, min(SKETCH_MAX, n // divisor))


def sketch_bytes(n: int, divisor: int) -> float:
    """Peak bytes of a float32 sketch: its vectors and their product, and the product's
    temporaries for one chunk of vectors (`workers.compute.lobpcg`), bounded by 3 n r."""
    return 3 * 4.0 * n * sketch_rank(n, divisor)


LOBPCG_PRODUCTS = 120
"""Kernel products the extreme eigenpairs take at the default tolerance and k = 32: measured 56
at n = 3000 and 113 at n = 8192 on the sphere in d = 10 (bench/spectrum.py); the estimate's count
(the job stops at its `spectrum_products`)."""
ARCCOS_WORK = 150
"""Flop-equivalents of one kernel entry per arccos layer computed on the fly (~3 ns measured)."""

# convex programs: measured costs of the conic solvers and the pattern enumeration
SOLVER_ITERATIONS = 40
"""Interior-point iterations behind the cost estimate (Clarabel took 8 to 50 here)."""
SOLVE_WORK = 25_000
"""Flop-equivalents per program coefficient and iteration: measured 17 s for 1e6 ReLU coefficients
over 50 iterations, at the 5e10 flop-equivalents a second that STEP_OVERHEAD assumes."""
BYTES_PER_ENTRY = 800
"""Peak memory per program coefficient, cvxpy's canonicalisation included (measured ~700)."""
LP_WORK = 1.5e7
"""Flop-equivalents of one small LP of the exact pattern enumeration (~0.3 ms)."""


class Cost(BaseModel):
    """Estimated work of one job: floating-point operations and peak bytes held at once."""

    flops: float
    memory_bytes: float


def over_budget(cost: Cost, max_flops: float, max_memory_bytes: float) -> str | None:
    """Why a cost exceeds the budget, naming each limit and by how much; None if it fits."""
    reasons = []
    if cost.memory_bytes > max_memory_bytes:
        reasons.append(
            f"estimated memory {cost.memory_bytes / GIB:.2f} GiB exceeds the memory budget of "
            f"{max_memory_bytes / GIB:.2f} GiB by {(cost.memory_bytes - max_memory_bytes) / GIB:.2f}"
            f" GiB ({cost.memory_bytes / max_memory_bytes:.1f}x)"
        )
    if cost.flops > max_flops:
        reasons.append(
            f"estimated compute {cost.flops:.3g} flop exceeds the compute budget of "
            f"{max_flops:.3g} flop by {cost.flops - max_flops:.3g} flop "
            f"({cost.flops / max_flops:.1f}x)"
        )
    return "; ".join(reasons) or None
