"""What lets a user check the SDP's tightness (Bartan & Pilanci 2021; docs/science.md §6): the
spectra of its PSD blocks Z and Z', their numerical ranks, and the neurons read off each.

A net lifts to Z = sum_{alpha_j > 0} alpha_j [u_j; 1][u_j; 1]^T (and Z' alike for alpha_j < 0),
so where the SDP is tight and its solution the lift of the recovered net, rank Z is the number of
positive output weights, rank Z' that of negative ones, and tr Z = 2 sum_{alpha_j > 0} alpha_j
(|u_j| = 1). The penalty beta (Z4 + Z4') is beta/2 (tr Z + tr Z'): each eigen-direction of a
block costs beta lambda / 2."""

import math

import numpy as np
import torch
from numpy.typing import NDArray

from schemas.convex_results import SdpMatrix, SdpReport

Array = NDArray[np.float64]


def spectrum(M: Array) -> Array:
    """Eigenvalues of the symmetrised (M + M^T) / 2, largest first (LAPACK's syevd via numpy)."""
    return np.linalg.eigvalsh((M + M.T) / 2)[::-1]


def rank_threshold(Z: Array, Zp: Array, solver_tolerance: float, tolerance: float, beta: float) -> float:
    """The eigenvalue above which a direction of Z or Z' counts toward its rank: sqrt(solver_tolerance)
    lambda_max, lambda_max the largest eigenvalue of the two blocks; but 2 tolerance / beta when
    lambda_max is below that, for a solution that is zero within the result's tolerance (its
    largest direction's penalty beta lambda_max / 2 is under it): rank 0, not the rank of its
    noise.

    Why sqrt: at an interior-point solution each eigenvalue of a block and the matching one of its
    dual slack multiply to about the final barrier parameter (<= solver_tolerance), so a direction
    that is zero at the exact solution stays below sqrt(solver_tolerance) in relative terms while
    its slack is above it. Measured on 144 problems (n <= 60, d <= 8, four activations, three
    losses), each solved at 1e-8 and 1e-6: at 1e-8 the directions left out were at most 3e-7
    lambda_max and those counted at least 4e-4 lambda_max; at 1e-6 the noise reached 9e-4
    lambda_max, against the cutoff 1e-3, and two problems lost a true direction of ~6e-4
    lambda_max that 1e-8 counts: at loose tolerances small directions and noise overlap."""
    largest = max(float(spectrum(Z)[0]), float(spectrum(Zp)[0]), 0.0)
    zero = 2.0 * tolerance / beta
    return math.sqrt(solver_tolerance) * largest if largest > zero else zero


def sdp_report(
    Z: Array, Zp: Array, alpha: torch.Tensor, threshold: float, return_matrices: bool
) -> SdpReport:
    """Each block's spectrum, its rank above `threshold`, and the recovered neurons read off it
    (alpha: the recovered net's output weights, positive ones from Z)."""
    matrices = []
    for name, M, neurons in (("Z", Z, int((alpha > 0).sum())), ("Z'", Zp, int((alpha < 0).sum()))):
        values = spectrum(M)
        matrices.append(
            SdpMatrix(
                name=name,
                eigenvalues=values.tolist(),
                rank=int((values > threshold).sum()),
                neurons=neurons,
                matrix=M.tolist() if return_matrices else None,
            )
        )
    return SdpReport(threshold=threshold, matrices=matrices)
