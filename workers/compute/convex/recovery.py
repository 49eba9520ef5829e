"""The net read off a convex program's solution, pruned of its noise neurons and checked to
reproduce the certified optimum within the job's tolerance (docs/science.md §6)."""

from collections.abc import Sequence

import numpy as np
import torch

from schemas.convex import ConvexSpec
from schemas.convex_results import Neuron, Recovery
from workers.compute.convex.programs import Objective, prune

PRUNE_SHARE = 0.5
"""Share of the tolerance that dropping noise neurons from the recovered net may cost."""
READ_OFF = {
    "relu_convex": "u = v/sqrt|v|, alpha = +-sqrt|v| per pattern (Pilanci & Ergen 2020)",
    "sdp_rank": "rank-one pieces p = [q; t] with |q| = |t| (Sturm & Zhang 2003) of Z, Z' over their "
    "eigenvalues above the rank threshold: u = sign(t) q/|q|, alpha = +-t^2",
    "sdp_all": "rank-one pieces p = [q; t] with |q| = |t| (Sturm & Zhang 2003) of Z, Z' over every "
    "positive eigenvalue (the read-off over the numerical rank missed the optimum): u = sign(t) q/|q|, "
    "alpha = +-t^2",
}
"""How a net is read off, by candidate: the SDP tries its numerical rank first, then every
positive eigenvalue (a nonsmooth loss can need the solver's smallest directions to reach the
optimum within the tolerance)."""

Net = tuple[np.ndarray, np.ndarray]  # U (k, d), alpha (k,)


def tolerance_of(spec: ConvexSpec, optimum: float) -> float:
    """check_tolerance relative to the optimum, plus the solver's own tolerance as an absolute
    floor (its stopping rule: gap <= tol_abs + tol_rel |objective|)."""
    return spec.check_tolerance * abs(optimum) + spec.solver_tolerance


def recovery(
    spec: ConvexSpec,
    objective: Objective,
    data: tuple[torch.Tensor, torch.Tensor],
    candidates: Sequence[tuple[str, Net]],
    optimum: float,
) -> tuple[Recovery, torch.Tensor, torch.Tensor]:
    """The first candidate net (READ_OFF key, net) that, its noise neurons pruned within
    PRUNE_SHARE of the tolerance, reproduces the optimum within the tolerance (`tolerance_of`),
    and its objective; a ValueError when none does: the solution was not accurate enough."""
    X, y = data
    tolerance = tolerance_of(spec, optimum)
    misses = []
    for key, net in candidates:
        U, alpha = prune(
            objective, X, y, torch.from_numpy(net[0]), torch.from_numpy(net[1]), PRUNE_SHARE * tolerance
        )
        value = float(objective.value(X, y, U, alpha))
        error = abs(value - optimum)
        if error <= tolerance:
            report = Recovery(
                neurons=[Neuron(weights=u.tolist(), output=float(a)) for u, a in zip(U, alpha, strict=True)],
                active=len(alpha),
                objective=value,
                error=error,
                method=READ_OFF[key],
            )
            return report, U, alpha
        misses.append((error, value))
    error, value = min(misses)
    raise ValueError(
        f"the net recovered from the {spec.program.name} solution has objective {value:.12g}, the "
        f"solver's optimum is {optimum:.12g}: they differ by {error:.2e}, more than the tolerance "
        f"{tolerance:.2e} (check_tolerance x |optimum| + solver_tolerance); tighten "
        "solver_tolerance or use solver 'clarabel'"
    )
