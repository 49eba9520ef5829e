"""Symmetries of teacher-student critical points: equality up to the group, and isotropy.

The loss depends on the student only through the inner products among its neurons and with the
teacher's (the arc-cosine kernel), and on each neuron (w_i, a_i) only through a_i relu(w_i.x),
which relu's positive homogeneity leaves unchanged under (c w_i, a_i / c), c > 0. So a point is
described, up to rotations that fix the teacher and up to rescaling, by its frame:

    w~_i = |a_i| w_i,   C = W~ V^T (n, k),   S = W~ W~^T (n, n),   sign(a_i).

The group acts by neuron permutations P (rows of C, rows and columns of S) and, when the teacher's
rows are orthonormal (the identity teacher, or a random orthonormal one), by permutations sigma of
the teacher neurons (columns of C): for V = I these are the simultaneous permutations of input
coordinates and teacher neurons, L(P W Q^T) = L(W) (Arjevani & Field 2020). Two points are equal up
to the group when some (P, sigma) maps one frame onto the other within a tolerance; candidates come
from assignment problems (Hungarian algorithm, scipy) on permutation-invariant signatures, and
every match is verified entry by entry, so a reported equality is never a guess.

The isotropy of a point is the subgroup of pairs (P, sigma) fixing its frame. Its projection to
the teacher neurons is found from the transpositions (j j') it contains (each realised by an
explicit P); the transpositions generate the product of symmetric groups on the connected
components, named as in Arjevani & Field (S6 x S1 for the k = 7 spurious minimum).
"""

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

REFINEMENTS = 4


@dataclass(frozen=True)
class Frame:
    """Rotation- and rescaling-invariant description of a point (module doc)."""

    C: np.ndarray  # (n, k) inner products with the teacher neurons
    S: np.ndarray  # (n, n) inner products among the student neurons
    sign: np.ndarray  # (n,) sign of the output weights


def frame(W: np.ndarray, a: np.ndarray, V: np.ndarray) -> Frame:
    """W: (n, d), a: (n,), V: (k, d)."""
    scaled = np.abs(a)[:, None] * W
    return Frame(scaled @ V.T, scaled @ scaled.T, np.sign(a))


def _invariants(f: Frame) -> np.ndarray:
    """Values no group element changes: the sorted entries of C and the sorted squared norms."""
    return np.concatenate([np.sort(f.C.ravel()), np.sort(np.diag(f.S))])


def _match_rows(A: Frame, B: Frame, sigma: np.ndarray) -> np.ndarray:
    """P minimising sum_i |C_A[P_i, sigma] - C_B[i]|^2 + |sort S_A[P_i] - sort S_B[i]|^2, with
    mismatched output signs forbidden. B row i corresponds to A row P[i]."""
    features_a = np.concatenate([A.C[:, sigma], np.sort(A.S, axis=1)], axis=1)
    features_b = np.concatenate([B.C, np.sort(B.S, axis=1)], axis=1)
    cost = ((features_b[:, None, :] - features_a[None, :, :]) ** 2).sum(-1)
    cost = cost + 1e6 * (B.sign[:, None] != A.sign[None, :])
    return linear_sum_assignment(cost)[1]


def _match_columns(A: Frame, B: Frame, P: np.ndarray) -> np.ndarray:
    """sigma minimising sum_j |C_A[P, sigma_j] - C_B[:, j]|^2."""
    C = A.C[P]
    cost = ((B.C.T[:, None, :] - C.T[None, :, :]) ** 2).sum(-1)
    return linear_sum_assignment(cost)[1]


def _residual(A: Frame, B: Frame, P: np.ndarray, sigma: np.ndarray) -> float:
    """max |C_A[P][:, sigma] - C_B|, |S_A[P][:, P] - S_B|; inf when output signs differ."""
    if not np.array_equal(A.sign[P], B.sign):
        return np.inf
    gap_c = np.abs(A.C[P][:, sigma] - B.C).max(initial=0.0)
    gap_s = np.abs(A.S[P][:, P] - B.S).max(initial=0.0)
    return float(max(gap_c, gap_s))


def align(A: Frame, B: Frame, relabel: bool, tolerance: float) -> tuple[np.ndarray, np.ndarray] | None:
    """(P, sigma) with frame B = (P, sigma) . frame A within tolerance, or None if none was found.
    sigma is the identity unless relabel (orthonormal teacher). Starts from matching the teacher
    columns by their sorted entries (unchanged by P), then alternates row and column assignments."""
    k = A.C.shape[1]
    if A.C.shape != B.C.shape or np.abs(_invariants(A) - _invariants(B)).max(initial=0.0) > tolerance:
        return None
    if relabel:
        columns_a, columns_b = np.sort(A.C, axis=0), np.sort(B.C, axis=0)
        cost = ((columns_b.T[:, None, :] - columns_a.T[None, :, :]) ** 2).sum(-1)
        sigma = linear_sum_assignment(cost)[1]
    else:
        sigma = np.arange(k)
    for _ in range(REFINEMENTS):
        P = _match_rows(A, B, sigma)
        if _residual(A, B, P, sigma) <= tolerance:
            return P, sigma
        if not relabel:
            return None
        sigma = _match_columns(A, B, P)
    return None


def same_point(A: Frame, B: Frame, relabel: bool, tolerance: float) -> bool:
    return align(A, B, relabel, tolerance) is not None


def _components(size: int, edges: list[tuple[int, int]]) -> list[list[int]]:
    """Connected components of a graph on range(size), each sorted, largest first."""
    parent = list(range(size))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in edges:
        parent[root(i)] = root(j)
    groups: dict[int, list[int]] = {}
    for i in range(size):
        groups.setdefault(root(i), []).append(i)
    return sorted(groups.values(), key=lambda group: (-len(group), group[0]))


@dataclass(frozen=True)
class Isotropy:
    """The symmetry of one point."""

    name: str  # product of symmetric groups on the teacher orbits, e.g. "S6 x S1"
    neuron_orbits: list[list[int]]
    input_orbits: list[list[int]]
    identical_neurons: list[
        list[int]
    ]  # groups of neurons with equal (w~, sign): the kernel of the projection


def isotropy(f: Frame, relabel: bool, tolerance: float) -> Isotropy:
    """Transpositions of teacher neurons that some neuron permutation compensates (checked by
    `_residual`), identical neurons, and the orbits of the group they generate."""
    n, k = f.C.shape
    teacher_edges: list[tuple[int, int]] = []
    neuron_edges: list[tuple[int, int]] = []
    if relabel:
        signature = np.sort(f.C, axis=0)
        for j in range(k):
            for other in range(j + 1, k):
                if np.abs(signature[:, j] - signature[:, other]).max(initial=0.0) > tolerance:
                    continue
                sigma = np.arange(k)
                sigma[[j, other]] = [other, j]
                P = _match_rows(f, f, sigma)
                if _residual(f, f, P, sigma) <= tolerance:
                    teacher_edges.append((j, other))
                    neuron_edges.extend((i, int(P[i])) for i in range(n) if P[i] != i)
    identical = [(i, j) for i in range(n) for j in range(i + 1, n) if _swap_fixes(f, i, j, tolerance)]
    input_orbits = _components(k, teacher_edges)
    name = " x ".join(f"S{len(orbit)}" for orbit in input_orbits)
    identical_groups = [group for group in _components(n, identical) if len(group) > 1]
    return Isotropy(name, _components(n, neuron_edges + identical), input_orbits, identical_groups)


def _swap_fixes(f: Frame, i: int, j: int, tolerance: float) -> bool:
    """Whether exchanging neurons i and j (teacher fixed) leaves the frame unchanged."""
    P = np.arange(f.C.shape[0])
    P[[i, j]] = [j, i]
    return _residual(f, f, P, np.arange(f.C.shape[1])) <= tolerance


class Classes:
    """Points up to the group, met one at a time: each class is represented by its first point.
    `place` compares a new frame with the representatives whose invariants (`_invariants`) agree
    within the tolerance (usually one), in the order the classes were found, so the classes and
    their order do not depend on how the points were chunked."""

    def __init__(self, relabel: bool, tolerance: float) -> None:
        self.relabel, self.tolerance = relabel, tolerance
        self.frames: list[Frame] = []
        self.table: np.ndarray | None = None  # (classes, invariants) of the representatives

    def place(self, f: Frame) -> tuple[int, bool]:
        """The class of f, and whether f founded it (a new class)."""
        key = _invariants(f)
        if self.table is not None and self.table.shape[1] == key.size:
            close = np.abs(self.table - key).max(axis=1, initial=0.0) <= self.tolerance
            for index in np.flatnonzero(close):
                if align(self.frames[index], f, self.relabel, self.tolerance) is not None:
                    return int(index), False
        self.frames.append(f)
        self.table = key[None] if self.table is None else np.vstack([self.table, key])
        return len(self.frames) - 1, True


def deduplicate(frames: list[Frame], relabel: bool, tolerance: float) -> list[int]:
    """For each frame, the index of the first earlier frame equal to it up to the group (itself if
    none): representatives are the frames that map to themselves."""
    classes = Classes(relabel, tolerance)
    first: list[int] = []
    owner: list[int] = []
    for index, f in enumerate(frames):
        found, new = classes.place(f)
        if new:
            first.append(index)
        owner.append(first[found])
    return owner
