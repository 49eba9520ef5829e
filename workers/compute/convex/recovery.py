"""The net read off a convex program's solution, pruned of its noise neurons and checked to
reproduce the certified optimum within the job's tolerance (docs/science.md §6)."""

import numpy as np
import torch

from schemas.convex import ConvexSpec
from schemas.convex_results import Neuron, Recovery
from workers.compute.convex.programs import Objective, prune

PRUNE_SHARE = 0.5
"""Share of the tolerance that dropping noise neurons from the recovered net may cost."""
READ_OFF = {
    "relu_convex": "u = v/sqrt|v|, alpha = +-sqrt|v| per pattern (Pilanci & Ergen 2020)",
    "polynomial_sdp": "rank-one pieces p = [q; t] of Z, Z' with |q| = |t| (Sturm & Zhang 2003): "
    "u = sign(t) q/|q|, alpha = +-t^2",
}


def tolerance_of(spec: ConvexSpec, optimum: float) -> float:
    """check_tolerance relative to the optimum, plus the solver's own tolerance as an absolute
    floor (its stopping rule: gap <= tol_abs + tol_rel |objective|)."""
    return spec.check_tolerance * abs(optimum) + spec.solver_tolerance


def recovery(
    spec: ConvexSpec,
    objective: Objective,
    data: tuple[torch.Tensor, torch.Tensor],
    net: tuple[np.ndarray, np.ndarray],
    optimum: float,
) -> tuple[Recovery, torch.Tensor, torch.Tensor]:
    """The recovered net (its noise neurons pruned within PRUNE_SHARE of the tolerance) and its
    objective; a ValueError when that misses the optimum by more than the tolerance
    (`tolerance_of`): the solution was not accurate enough."""
    X, y = data
    tolerance = tolerance_of(spec, optimum)
    U, alpha = prune(
        objective, X, y, torch.from_numpy(net[0]), torch.from_numpy(net[1]), PRUNE_SHARE * tolerance
    )
    value = float(objective.value(X, y, U, alpha))
    error = abs(value - optimum)
    if not error <= tolerance:
        raise ValueError(
            f"the net recovered from the {spec.program.name} solution has objective {value:.12g}, the "
            f"solver's optimum is {optimum:.12g}: they differ by {error:.2e}, more than the tolerance "
            f"{tolerance:.2e} (check_tolerance x |optimum| + solver_tolerance); tighten "
            "solver_tolerance or use solver 'clarabel'"
        )
    report = Recovery(
        neurons=[Neuron(weights=u.tolist(), output=float(a)) for u, a in zip(U, alpha, strict=True)],
        active=len(alpha),
        objective=value,
        error=error,
        method=READ_OFF[spec.program.name],
    )
    return report, U, alpha
