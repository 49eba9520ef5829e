"""A hand-computed case of the first-layer NTK of the two-layer ReLU net: four directions in R^2
whose pairwise angles have exact cosines, so H_ij = |x_i||x_j| cos(theta_ij) (pi - theta_ij) / (2 pi)
is written out by hand."""

import math

SQRT3 = math.sqrt(3.0)
# Four directions in R^2 at angles 0, pi/3, pi/2 and pi from the x-axis: every pair has an angle
# with an exact cosine, and directions 0 and 3 are antiparallel.
DIRECTIONS = [(1.0, 0.0), (0.5, SQRT3 / 2), (0.0, 1.0), (-1.0, 0.0)]
# angle between direction i and j, and its cosine written exactly
ANGLES = {
    (0, 1): (math.pi / 3, 0.5),
    (0, 2): (math.pi / 2, 0.0),
    (0, 3): (math.pi, -1.0),
    (1, 2): (math.pi / 6, SQRT3 / 2),
    (1, 3): (2 * math.pi / 3, -0.5),
    (2, 3): (math.pi / 2, 0.0),
}


def hand_kernel(norms: list[float]) -> list[list[float]]:
    """H_ij = |x_i||x_j| cos(theta_ij) (pi - theta_ij) / (2 pi), from the table above."""
    n = len(norms)
    H = [[0.0] * n for _ in range(n)]
    for i in range(n):
        H[i][i] = norms[i] ** 2 * math.pi / (2 * math.pi)  # theta_ii = 0: |x_i|^2 / 2
    for (i, j), (theta, cosine) in ANGLES.items():
        H[i][j] = H[j][i] = norms[i] * norms[j] * cosine * (math.pi - theta) / (2 * math.pi)
    return H


def hand_points(norms: list[float]) -> list[list[float]]:
    return [[r * c for c in direction] for r, direction in zip(norms, DIRECTIONS, strict=True)]


UNIT = [1.0, 1.0, 1.0, 1.0]
SCALED = [2.0, 3.0, 0.5, 1.5]
