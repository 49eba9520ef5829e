"""Where the comparison's nonconvex runs start (the spec's `start`): seeded random nets, the net
recovered from the convex program, or a net given in the spec, the last two optionally perturbed
by seeded Gaussian noise of a relative scale. Parameters as in compare.py: ReLU {W: (R, m, d),
a: (R, m)}, polynomial {W: (R, m, d), s: (R, m), t: (R, m)} with alpha = s t."""

import math
from collections.abc import Callable

import torch

from schemas.convex import GivenStart, RandomStart, RecoveredStart
from workers.compute.convex.nonconvex import Setup
from workers.compute.networks import Params

NOISE_SEED = 2**40
"""Added to a replicate's seed for the generator of its noise (apart from its random start)."""


def random_starts(setup: Setup, seeds: list[int]) -> Params:
    """Each seed's start, stacked: rows of W ~ N(0, scale^2 I / d), output weights a ~ N(0, scale^2
    / m) (ReLU) or s, t ~ N(0, scale / m) each (polynomial: s t then has variance scale^2 / m^2)."""
    m, d = setup.width, setup.X.shape[1]
    per_seed = []
    for seed in seeds:
        g = torch.Generator().manual_seed(seed)
        W = setup.init_scale * torch.randn(m, d, generator=g, dtype=torch.float64) / math.sqrt(d)
        if setup.relu:
            params = {
                "W": W,
                "a": setup.init_scale * torch.randn(m, generator=g, dtype=torch.float64) / math.sqrt(m),
            }
        else:
            spread = math.sqrt(setup.init_scale / m)
            s, t = (spread * torch.randn(m, generator=g, dtype=torch.float64) for _ in range(2))
            params = {"W": W, "s": s, "t": t}
        per_seed.append(params)
    return {name: torch.stack([p[name] for p in per_seed]) for name in per_seed[0]}


def as_params(setup: Setup, U: torch.Tensor, alpha: torch.Tensor) -> Params:
    """The net sum_j sigma(u_j . x) alpha_j as trained parameters (R = 1), balanced so that the
    smooth penalty equals the program's: ReLU W = U, a = alpha; polynomial W = U, s = sqrt|alpha|,
    t = sign(alpha) sqrt|alpha| (beta/2 (s^2 + t^2) = beta |alpha|). U: (m, d), alpha: (m,)."""
    if setup.relu:
        return {"W": U[None], "a": alpha[None]}
    root = alpha.abs().sqrt()
    return {"W": U[None], "s": root[None], "t": (torch.sign(alpha) * root)[None]}


def embedded(setup: Setup, U: torch.Tensor, alpha: torch.Tensor) -> Params | None:
    """The recovered optimum as a width-m net (R = 1), padded with silent neurons (zero for ReLU;
    for the polynomial net unit rows e_1 with s = t = 0); None when it has more than m neurons."""
    k, m = U.shape[0], setup.width
    if k > m:
        return None
    pad = m - k
    if setup.relu:
        rows = torch.cat([U, U.new_zeros(pad, U.shape[1])])
    else:
        rows = torch.cat([U, torch.eye(U.shape[1], dtype=U.dtype)[:1].expand(pad, -1)])
    return as_params(setup, rows, torch.cat([alpha, alpha.new_zeros(pad)]))


def perturbed(theta: Params, noise: float, seeds: list[int]) -> Params:
    """theta (R = 1) repeated for each seed, plus noise x rms(theta) x N(0, I) drawn from the
    seed's own generator (seed + NOISE_SEED), rms the root mean square over every trained entry:
    |theta_0 - theta| ~ noise |theta|."""
    entries = torch.cat([value.flatten() for value in theta.values()])
    scale = noise * float(entries.square().mean().sqrt())
    per_seed = []
    for seed in seeds:
        g = torch.Generator().manual_seed(seed + NOISE_SEED)
        per_seed.append(
            {
                name: value[0] + scale * torch.randn(value.shape[1:], generator=g, dtype=value.dtype)
                for name, value in theta.items()
            }
        )
    return {name: torch.stack([p[name] for p in per_seed]) for name in theta}


def from_recovered(
    setup: Setup, start: RecoveredStart, seeds: list[int], optimum_net: tuple[torch.Tensor, torch.Tensor]
) -> Params:
    at_optimum = embedded(setup, *optimum_net)
    if at_optimum is None:
        raise ValueError(
            f"start 'recovered': the recovered net has {optimum_net[0].shape[0]} neurons, more than "
            f"the width {setup.width} of the nonconvex nets; set width >= {optimum_net[0].shape[0]}"
        )
    return perturbed(at_optimum, start.noise, seeds)


def from_given(setup: Setup, start: GivenStart, seeds: list[int], _optimum_net: object) -> Params:
    U = torch.tensor(start.weights, dtype=torch.float64)
    alpha = torch.tensor(start.outputs, dtype=torch.float64)
    return perturbed(as_params(setup, U, alpha), start.noise, seeds)


def from_random(setup: Setup, _start: RandomStart, seeds: list[int], _optimum_net: object) -> Params:
    return random_starts(setup, seeds)


START_POINTS: dict[str, Callable[..., Params]] = {
    "random": from_random,
    "recovered": from_recovered,
    "given": from_given,
}
"""Per start name: (setup, start spec, seeds, recovered net (U, alpha)) -> the stacked starts."""


def start_points(
    setup: Setup,
    start: RandomStart | RecoveredStart | GivenStart,
    seeds: list[int],
    optimum_net: tuple[torch.Tensor, torch.Tensor],
) -> Params:
    """Each seed's start of the spec's kind, stacked (R = len(seeds))."""
    return START_POINTS[start.name](setup, start, seeds, optimum_net)
