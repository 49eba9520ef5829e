"""The nonconvex nets the convex programs solve exactly, as the comparison trains them, and how a
run of them ends.

Parameters carry a leading replicate axis R. ReLU: theta = {W: (R, m, d), a: (R, m)}, trained
objective loss(f - y) + beta/2 (|W|^2 + |a|^2), the program's own objective. Polynomial: theta =
{W: (R, m, d), s: (R, m), t: (R, m)} with u_j = w_j / |w_j| (the unit-norm constraint built into
the net, so any step stays feasible) and alpha_j = s_j t_j, trained objective loss(f - y) +
beta/2 (|s|^2 + |t|^2): smooth, and equal to loss + beta sum |alpha_j| at its minimum over s, t
with s t fixed (beta |st| <= beta (s^2 + t^2) / 2, equality at |s| = |t|). Runs report the
program's objective of their net (for the polynomial net: loss + beta sum |s_j t_j|)."""

import math
from dataclasses import dataclass

import torch

from schemas.convex import ReluProgram
from workers.compute.convex.programs import Objective
from workers.compute.networks import Params
from workers.compute.training.engine import DIVERGENCE_FACTOR


@dataclass(frozen=True)
class Setup:
    """What every nonconvex run of a job shares."""

    objective: Objective
    X: torch.Tensor  # (n, d)
    y: torch.Tensor  # (n,)
    width: int
    init_scale: float
    optimum: float
    exact: bool  # False: sampled patterns, the optimum is an upper bound (runs never stop at it)
    tolerance: float  # absolute: a run within it of an exact optimum has reached it

    @property
    def relu(self) -> bool:
        return isinstance(self.objective.program, ReluProgram)

    def net(self, theta: Params) -> tuple[torch.Tensor, torch.Tensor]:
        """(U, alpha) of the nets: the first-layer rows and output weights."""
        if self.relu:
            return theta["W"], theta["a"]
        W = theta["W"]
        return W / W.norm(dim=-1, keepdim=True), theta["s"] * theta["t"]

    def reported(self, theta: Params) -> torch.Tensor:
        """The program's objective of each replicate's net: (R,)."""
        U, alpha = self.net(theta)
        return self.objective.value(self.X, self.y, U, alpha)

    def regularised(self, theta: Params) -> list[torch.Tensor]:
        """The parameters the penalty acts on, as beta/2 |.|^2."""
        return [theta["W"], theta["a"]] if self.relu else [theta["s"], theta["t"]]

    def trained(self, theta: Params, X: torch.Tensor, y: torch.Tensor, scale: float) -> torch.Tensor:
        """scale x data loss on (X, y) plus the smooth penalty: (R,)."""
        U, alpha = self.net(theta)
        penalty = sum(value.square().flatten(1).sum(1) for value in self.regularised(theta))
        return (
            scale * self.objective.data_loss(self.objective.predict(X, U, alpha) - y)
            + 0.5 * self.objective.beta * penalty
        )

    def residual(self, theta: Params) -> torch.Tensor:
        """[f(X) - y; sqrt(beta) theta_reg], stacked (R, n + q) or of one replicate (n + q,): half
        its square norm is the trained objective with the squared loss (the Gauss-Newton residual)."""
        U, alpha = self.net(theta)
        lead, root = alpha.shape[:-1], math.sqrt(self.objective.beta)
        pieces = [root * value.reshape(*lead, -1) for value in self.regularised(theta)]
        return torch.cat([self.objective.predict(self.X, U, alpha) - self.y, *pieces], dim=-1)


@dataclass
class Outcome:
    """How one run ended; its objective at the grid's record steps up to there, and for L-BFGS
    its objective-and-gradient evaluations."""

    seed: int
    status: str
    steps: int
    seconds: float
    trajectory: list[float | None]
    evaluations: int | None = None


def stop(value: float, initial: float, setup: Setup, elapsed: float, max_seconds: float) -> str | None:
    """Why a run ends at a record step with this objective, or None to go on."""
    if not math.isfinite(value) or value > DIVERGENCE_FACTOR * max(initial, 1e-300):
        return "diverged"
    if setup.exact and value - setup.optimum <= setup.tolerance:
        return "reached"
    return "budget" if elapsed > max_seconds else None
