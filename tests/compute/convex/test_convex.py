"""Exact convex training (SCIENCE.md section 6) against brute force.

A researcher asks for the global optimum of a regularised two-layer net and expects: every
activation pattern found (Cover's count); the ReLU program's value equal to the best of many
L-BFGS restarts of the nonconvex net, which never go below it; the SDP tight against a wide
polynomial net; the recovered nets reproducing the optimum for every loss; the comparison's
optimizers never beating it (and sampled patterns saying their value is an upper bound); bad specs
rejected with the field named; a solver that fails, or a solution not accurate enough, failing the
job with its reason. CPU, float64.
"""

import json
import math
from collections.abc import Callable
from pathlib import Path

import cvxpy as cp
import numpy as np
import pytest
import torch
from pydantic import TypeAdapter, ValidationError

from schemas import ConvexResult, ConvexSpec, ExperimentResult, JobRequest, over_budget
from schemas.convex import CONVEX_EXAMPLE, pattern_bound
from workers.compute import run_experiment
from workers.compute.convex.patterns import (
    exact_patterns,
    incremental_patterns,
    sampled_patterns,
    vertex_patterns,
)
from workers.compute.convex.programs import Objective, solve
from workers.compute.convex.recovery import recovery
from workers.compute.datasets import make_data
from workers.compute.device import single_thread
from workers.compute.landscape.critical_points import lbfgs

F64 = torch.float64
EPS = float(np.finfo(np.float64).eps)
EXAMPLES = Path(__file__).parents[3] / "examples"
RELU_12 = {**CONVEX_EXAMPLE, "compare": []}  # n = 12 points on the circle, a 3-neuron ReLU teacher
POLY_20 = {
    "kind": "convex",
    "program": {"name": "polynomial_sdp", "a": 1.0, "b": 1.0, "c": 0.0},
    "dataset": {"name": "sphere", "n": 20, "d": 3, "labels": {"rule": "relu_teacher", "k": 3}},
    "compare": [],
}


def convex(body: dict, **changes: object) -> ConvexResult:
    result = run_experiment(ConvexSpec.model_validate({**body, **changes}))
    assert isinstance(result, ConvexResult)
    return result


class Flat:
    """A batched objective on flat parameters theta (R, P), for the landscape's batched L-BFGS."""

    def __init__(self, f: Callable[..., torch.Tensor], shapes: list[tuple[int, ...]]) -> None:
        self.f, self.shapes = f, shapes

    def loss(self, theta: torch.Tensor) -> torch.Tensor:
        pieces, at = [], 0
        for shape in self.shapes:
            size = math.prod(shape)
            pieces.append(theta[:, at : at + size].reshape(-1, *shape))
            at += size
        return self.f(*pieces)

    def loss_and_gradient(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        leaf = theta.detach().requires_grad_()
        value = self.loss(leaf)
        return value.detach(), torch.autograd.grad(value.sum(), leaf)[0]


def best_of_restarts(objective: Flat, theta: torch.Tensor) -> torch.Tensor:
    """Each start's objective after 3000 batched L-BFGS iterations: (R,)."""
    with single_thread():
        return objective.loss(lbfgs(objective, theta, 3000).theta)


def lower_bound(result: ConvexResult) -> float:
    """The solver's dual objective in the program's terms: no net can do better (up to residuals)."""
    return result.solver.dual_objective + result.solver.offset


# ---------------------------------------------------------------------------------------------
# a) activation patterns
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "d"), [(12, 2), (9, 3), (7, 4)])
def test_exact_patterns_are_every_region_of_the_arrangement(n: int, d: int) -> None:
    """Points in general position: Cover's count 2 sum_{k<d} C(n-1, k), and 10^5 random
    directions find no pattern outside the enumeration."""
    X = np.random.default_rng(n).standard_normal((n, d))
    masks = exact_patterns(X)
    assert len(masks) == pattern_bound(n, d) == len(np.unique(masks, axis=0))
    known = {row.tobytes() for row in masks}
    assert {row.tobytes() for row in sampled_patterns(X, 100_000, 0)} <= known


@pytest.mark.parametrize(("n", "d"), [(1, 3), (12, 1), (12, 2), (9, 3), (7, 4), (15, 3)])
def test_the_vertex_enumeration_finds_what_one_lp_per_split_finds(n: int, d: int) -> None:
    X = np.random.default_rng(100 + n).standard_normal((n, d))
    assert rows(exact_patterns(X)) == rows(incremental_patterns(X))


def test_points_not_in_general_position_take_the_lp_route() -> None:
    """A repeated row, a row on another's ray, a zero row, points in a plane of R^3: the vertex
    enumeration declines (its count would not be Cover's), the LPs answer."""
    base = np.random.default_rng(7).standard_normal((8, 3))
    cases = {
        "repeated": np.vstack([base, base[:1]]),
        "same ray": np.vstack([base, 2.5 * base[1:2]]),
        "zero row": np.vstack([base, np.zeros((1, 3))]),
        "in a plane": base * np.array([1.0, 1.0, 0.0]),
    }
    for name, X in cases.items():
        if name != "zero row":
            assert vertex_patterns(X[np.any(X != 0, axis=1)]) is None, name
        masks = exact_patterns(X)
        assert rows(masks) == rows(incremental_patterns(X)), name
        assert len(masks) < pattern_bound(*X.shape) or name == "zero row", name


def rows(masks: np.ndarray) -> set[bytes]:
    return {row.tobytes() for row in masks}


# ---------------------------------------------------------------------------------------------
# b) the optima against brute force
# ---------------------------------------------------------------------------------------------


def test_relu_optimum_is_the_best_of_50_lbfgs_restarts() -> None:
    """n = 12, d = 2, all 24 patterns; 50 L-BFGS restarts of a width-30 net with weight decay:
    none below the certified lower bound, the best within 1e-3 (relative) of the optimum."""
    result = convex(RELU_12)
    spec = ConvexSpec.model_validate(RELU_12)
    data = make_data(spec.dataset, F64, torch.device("cpu"))
    beta, m, R = spec.beta, 30, 50

    def weight_decay(W: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        f = (torch.relu(data.X @ W.mT) @ a[..., None])[..., 0]
        return 0.5 * (f - data.y).square().sum(-1) + 0.5 * beta * (
            W.square().sum((-2, -1)) + a.square().sum(-1)
        )

    g = torch.Generator().manual_seed(1)
    theta = torch.cat(
        [torch.randn(R, m * 2, generator=g, dtype=F64), torch.randn(R, m, generator=g, dtype=F64)], 1
    )
    values = best_of_restarts(Flat(weight_decay, [(m, 2), (m,)]), theta / math.sqrt(2))
    assert result.exact and result.patterns is not None and result.patterns.count == 24
    assert float(values.min()) >= lower_bound(result) - 1e-9
    assert (float(values.min()) - result.optimum) / result.optimum <= 1e-3


def test_sdp_is_tight_against_a_wide_polynomial_net() -> None:
    """sigma(t) = t^2 + t, unit-norm rows, penalty beta sum |alpha|: the best of 20 L-BFGS starts
    of a 40-neuron net (u = w/|w|, alpha = s t with beta/2 (s^2 + t^2)) equals the SDP value to
    1e-7 relative (measured ~1e-9) and none is below its lower bound."""
    result = convex(POLY_20)
    spec = ConvexSpec.model_validate(POLY_20)
    data = make_data(spec.dataset, F64, torch.device("cpu"))
    beta, m, R, d = spec.beta, 40, 20, 3

    def lifted(W: torch.Tensor, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        T = data.X @ (W / W.norm(dim=-1, keepdim=True)).mT
        f = ((T + 1) * T @ (s * t)[..., None])[..., 0]
        return 0.5 * (f - data.y).square().sum(-1) + 0.5 * beta * (s.square().sum(-1) + t.square().sum(-1))

    g = torch.Generator().manual_seed(2)
    theta = torch.cat(
        [
            torch.randn(R, m * d, generator=g, dtype=F64),
            torch.randn(R, 2 * m, generator=g, dtype=F64) / math.sqrt(m),
        ],
        1,
    )
    values = best_of_restarts(Flat(lifted, [(m, d), (m,), (m,)]), theta)
    assert float(values.min()) >= lower_bound(result) - 1e-9
    assert abs(float(values.min()) - result.optimum) / result.optimum <= 1e-7
    assert result.recovery.active <= 2 * (d + 1)


@pytest.mark.parametrize("loss", ["squared", "l1", "huber"])
@pytest.mark.parametrize("body", [RELU_12, POLY_20], ids=["relu", "sdp"])
def test_recovered_nets_reproduce_the_optimum(body: dict, loss: str) -> None:
    """To 1e-8 |optimum| + 1e-8 (check and solver tolerances), as close as the solver's own gap.
    The tolerance is computed as 1e-8 |opt| + 1e-8, which differs from 1e-8 (1 + opt) by the
    rounding of two operations: within 2 eps relative."""
    result = convex(body, loss=loss, huber_delta=0.05, check_tolerance=1e-8)
    assert result.recovery.error <= result.tolerance
    assert result.tolerance == pytest.approx(1e-8 * (1 + abs(result.optimum)), rel=2 * EPS)
    assert result.solver.status == "optimal"
    assert abs(result.solver.duality_gap) <= result.tolerance
    if body is POLY_20:
        assert all(abs(np.linalg.norm(neuron.weights) - 1) < 1e-12 for neuron in result.recovery.neurons)


# ---------------------------------------------------------------------------------------------
# c) the comparison
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [RELU_12, POLY_20], ids=["relu", "sdp"])
def test_nonconvex_optimizers_never_beat_the_optimum(body: dict) -> None:
    compare = [
        {"name": "gd"},
        {"name": "heavy_ball", "momentum": 0.9},
        {"name": "ggn", "damping": 1e-4},
    ]
    result = convex(body, compare=compare, width=16, replicates=3, steps=600)
    tolerance = result.tolerance
    for row in result.comparison:
        assert len(row.runs) == 3
        for run in row.runs:
            assert run.gap is not None and run.gap >= -tolerance and run.below_optimum is None
            assert run.objective is not None and run.objective >= lower_bound(result) - tolerance
    gd, heavy_ball, ggn = result.comparison
    assert gd.auto is not None and gd.hyperparameters["lr"] == heavy_ball.hyperparameters["lr"]
    assert ggn.best_gap is not None and ggn.best_gap <= 1e-4 * result.optimum  # Gauss-Newton gets close


def test_sampled_patterns_give_an_upper_bound_and_say_so() -> None:
    """Four sampled directions miss patterns: the value is above the exact one, `exact` is false,
    and a run that ends below it is flagged instead of failing the job."""
    exact = convex(RELU_12)
    sampled = convex(
        RELU_12,
        program={"name": "relu_convex", "patterns": "sampled", "samples": 4},
        compare=[{"name": "ggn", "damping": 1e-4}],
        steps=300,
    )
    assert not sampled.exact and sampled.patterns is not None and sampled.patterns.count <= 4
    assert sampled.optimum > exact.optimum * (1 + 1e-3)
    runs = sampled.comparison[0].runs
    assert any(run.below_optimum == "sampled_upper_bound" for run in runs)
    assert all(run.gap is not None and (run.gap >= 0 or run.below_optimum) for run in runs)


# ---------------------------------------------------------------------------------------------
# d) guards
# ---------------------------------------------------------------------------------------------


def error_locs(body: dict) -> list[tuple]:
    with pytest.raises(ValidationError) as info:
        JobRequest.model_validate({"spec": body})
    return [error["loc"] for error in info.value.errors()]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"device": "cuda"}, "device"),
        ({"dataset": {"name": "sphere", "n": 40, "d": 4}}, "program"),  # 19,760 patterns
        (
            {
                "program": {"name": "relu_convex", "patterns": "sampled", "samples": 10**5},
                "dataset": {"name": "sphere", "n": 400, "d": 8},
            },
            "program",
        ),
        ({"program": {"name": "polynomial_sdp", "a": 0.0, "b": 0.0, "c": 0.0}}, "program"),
        (
            {"program": {"name": "polynomial_sdp"}, "dataset": {"name": "sphere", "n": 100, "d": 65}},
            "program",
        ),
        ({"compare": [{"name": "heavy_ball"}]}, "compare"),  # momentum auto
        ({"compare": [{"name": "ggn", "damping": 1e-3}], "loss": "l1"}, "compare"),
        ({"compare": [{"name": "ggn"}]}, "compare"),  # damping 0
        ({"beta": 0.0}, "beta"),
        ({"width": 10**4}, "width"),
    ],
)
def test_bad_specs_name_the_field(changes: dict, field: str) -> None:
    assert error_locs({**RELU_12, **changes}) == [("spec", "convex", field)]


def test_a_solver_that_does_not_reach_optimal_raises_with_its_status() -> None:
    x = cp.Variable()
    with pytest.raises(ValueError, match="infeasible"):
        solve(cp.Problem(cp.Minimize(x), [x >= 1, x <= 0]), "clarabel", 1e-8, 10)
    with pytest.raises(ValueError, match="scs did not solve the program: status optimal_inaccurate"):
        convex(RELU_12, solver="scs", solver_tolerance=1e-12, solver_seconds=0.001)


def test_a_recovered_net_that_misses_the_optimum_fails_the_job() -> None:
    """The recovered net of the example reproduces the optimum; with its output weights 1% larger
    it does not."""
    spec = ConvexSpec.model_validate(RELU_12)
    result = convex(RELU_12)
    data = make_data(spec.dataset, F64, torch.device("cpu"))
    U = np.array([neuron.weights for neuron in result.recovery.neurons])
    alpha = np.array([neuron.output for neuron in result.recovery.neurons])
    objective = Objective(spec.program, spec.loss, spec.huber_delta, spec.beta)
    recovery(spec, objective, (data.X, data.y), [("relu_convex", (U, alpha))], result.optimum)
    with pytest.raises(ValueError, match=r"more than the tolerance .* tighten solver_tolerance"):
        recovery(spec, objective, (data.X, data.y), [("relu_convex", (U, 1.01 * alpha))], result.optimum)


def test_the_example_is_within_budget_and_a_long_comparison_is_not() -> None:
    assert over_budget(ConvexSpec.model_validate(CONVEX_EXAMPLE).cost(), 5e12, 4 * 2**30) is None
    long = ConvexSpec.model_validate({**CONVEX_EXAMPLE, "steps": 10**6, "replicates": 64})
    assert "compute" in (over_budget(long.cost(), 5e12, 4 * 2**30) or "")


# ---------------------------------------------------------------------------------------------
# e) end to end
# ---------------------------------------------------------------------------------------------


def test_the_example_runs_end_to_end_and_round_trips_as_json() -> None:
    body = json.loads((EXAMPLES / "convex_relu.json").read_text())["spec"]
    spec = JobRequest.model_validate({"spec": body}).spec
    result = run_experiment(spec)
    stored = TypeAdapter(ExperimentResult).validate_json(result.model_dump_json())
    assert isinstance(stored, ConvexResult) and stored == result
    assert result.recovery.active >= 1 and result.solver.duality_gap <= 1e-7
    assert [row.name for row in result.comparison] == [optimizer["name"] for optimizer in body["compare"]]
    assert all(run.gap is not None and run.gap >= -1e-6 for row in result.comparison for run in row.runs)
