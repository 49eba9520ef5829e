"""Critical points of teacher-student ReLU nets (SCIENCE.md sections 2 and 3) against exact answers.

A researcher asks for the landscape of L(W, a) = 1/2 E[(sum_i a_i relu(w_i.x) - sum_j relu(v_j.x))^2],
x ~ N(0, I_d), and expects: the closed form to agree with a Monte Carlo estimate within its standard
error; gradients and Hessians to agree with finite differences (also where two neurons are parallel,
where autograd through arccos fails); the teacher to be a global minimum; Safran & Shamir's k = d = 7
spurious minimum with its published loss, spectrum and S6 x S1 symmetry; a census that finds the
global minimum from most starts and deduplicates up to symmetry; and Simsek et al.'s
symmetry-induced points, with the counts T and G confirmed by enumeration. CPU, float64.
"""

import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from torch.func import hessian

from schemas import LandscapeResult, LandscapeSpec, over_budget
from workers.compute import run_experiment
from workers.compute.landscape.embedding import count_G, count_T, maps, split, stirling2
from workers.compute.landscape.loss import Layout, PopulationLoss, SampleLoss
from workers.compute.landscape.symmetry import deduplicate, frame, isotropy, same_point

F64 = torch.float64


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_theta(layout: Layout, R: int, seed: int) -> torch.Tensor:
    g = generator(seed)
    W = torch.randn(R, layout.n, layout.d, generator=g, dtype=F64) / math.sqrt(layout.d)
    a = 1 + 0.5 * torch.randn(R, layout.n, generator=g, dtype=F64)
    return layout.join(W, a)


def spurious_ansatz(d: int = 7) -> list[list[float]]:
    """Safran & Shamir's k = d = 7 point, neurons as rows (the issue writes them as columns)."""
    rows = [[-0.633] + [0.186] * (d - 1)]
    for j in range(1, d):
        row = [0.262] + [-0.035] * (d - 1)
        row[j] = 0.997
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------
# a) the closed form: Monte Carlo, finite differences, the global minimum
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("trained", [False, True], ids=["fixed", "trained"])
def test_closed_form_loss_is_within_five_standard_errors_of_monte_carlo(trained: bool) -> None:
    layout, N = Layout(3, 4, trained), 400_000
    V = torch.eye(4, dtype=F64)[:3]
    theta = random_theta(layout, 2, seed=1)
    exact = PopulationLoss(V, layout).loss(theta)
    X = torch.randn(N, 4, generator=generator(2), dtype=F64)
    sampled = SampleLoss(V, layout, X)
    per_point = 0.5 * sampled._forward(theta)[2].square()  # (R, N): 1/2 (f - g)^2 per sample
    estimate, standard_error = per_point.mean(-1), per_point.std(-1) / math.sqrt(N)
    assert bool((standard_error < 0.01 * exact).all())  # the test can tell a wrong constant
    assert bool(((estimate - exact).abs() <= 5 * standard_error).all()), (estimate, exact, standard_error)


def central_differences(f, theta: torch.Tensor, h: float) -> torch.Tensor:
    """(f(theta + h e_p) - f(theta - h e_p)) / 2h for every coordinate p; f maps (R, P) -> (R, ...)."""
    columns = []
    for p in range(theta.shape[1]):
        step = torch.zeros_like(theta)
        step[:, p] = h
        columns.append((f(theta + step) - f(theta - step)) / (2 * h))
    return torch.stack(columns, dim=-1)


@pytest.mark.parametrize("trained", [False, True], ids=["fixed", "trained"])
def test_gradient_and_hessian_match_finite_differences(trained: bool) -> None:
    layout = Layout(3, 4, trained)
    objective = PopulationLoss(torch.eye(4, dtype=F64)[:3], layout)
    theta = random_theta(layout, 2, seed=3)
    gradient = objective.loss_and_gradient(theta)[1]
    torch.testing.assert_close(gradient, central_differences(objective.loss, theta, 1e-5), atol=1e-9, rtol=0)
    H = objective.hessian(theta)
    numeric = central_differences(lambda t: objective.loss_and_gradient(t)[1], theta, 1e-5)
    torch.testing.assert_close(H, numeric, atol=1e-8, rtol=0)
    torch.testing.assert_close(H, H.transpose(1, 2), atol=1e-14, rtol=0)
    # and the same Hessian from torch.func through the closed form, at this generic point
    by_autograd = torch.stack([hessian(lambda t: objective.loss(t[None])[0])(t) for t in theta])
    torch.testing.assert_close(H, by_autograd, atol=1e-12, rtol=0)


def test_hessian_at_parallel_neurons_takes_the_limit_where_autograd_gives_nan() -> None:
    """Split copies are exactly parallel (angle 0): kap is C^2 there (it grows like angle^3), the
    closed form (angle = atan2(|rejection|, cos)) takes the limit, and it matches finite
    differences of the gradient."""
    layout = Layout(4, 3, trained=True)
    objective = PopulationLoss(torch.eye(3, dtype=F64), layout)
    W, a = split(torch.eye(3, dtype=F64), torch.ones(3, dtype=F64), 0, 4, 0.3)
    theta = layout.join(W[None], a[None])
    H = objective.hessian(theta)
    assert bool(torch.isfinite(H).all())
    # the third derivative jumps at angle 0, so central differences are only O(h) accurate there
    gaps = []
    for h in (1e-5, 1e-7):
        numeric = central_differences(lambda t: objective.loss_and_gradient(t)[1], theta, h)
        gaps.append(float((H - numeric).abs().max()))
    assert gaps[1] < 5e-8 and gaps[1] < 0.05 * gaps[0], gaps
    # autograd through the textbook form (t = arccos c) breaks there: d arccos / dc = -inf at c = 1
    assert not bool(torch.isfinite(hessian(textbook_loss)(theta[0])).all())


def textbook_loss(theta: torch.Tensor) -> torch.Tensor:
    """The population loss of the 4-neuron, d = 3 student (trained a) with t = arccos(cos t)."""

    def kap(W: torch.Tensor, Z: torch.Tensor) -> torch.Tensor:
        norms = W.norm(dim=-1)[:, None] * Z.norm(dim=-1)[None, :]
        cosine = ((W @ Z.T) / norms).clamp(-1, 1)
        t = torch.arccos(cosine)
        return norms * (torch.sin(t) + (math.pi - t) * cosine) / (2 * math.pi)

    W, a, V = theta[:12].reshape(4, 3), theta[12:], torch.eye(3, dtype=F64)
    return 0.5 * (a @ kap(W, W) @ a - 2 * a @ kap(W, V).sum(1) + kap(V, V).sum())


@pytest.mark.parametrize("trained", [False, True], ids=["fixed", "trained"])
def test_teacher_is_a_global_minimum_with_zero_loss_zero_gradient_and_psd_hessian(trained: bool) -> None:
    V = torch.linalg.qr(torch.randn(5, 5, generator=generator(4), dtype=F64))[0][:4]  # orthonormal rows
    layout = Layout(4, 5, trained)
    objective = PopulationLoss(V, layout)
    theta = layout.join(V[None], torch.ones(1, 4, dtype=F64))
    loss, gradient = objective.loss_and_gradient(theta)
    assert abs(float(loss)) < 1e-14
    assert float(gradient.norm()) < 1e-14
    eigenvalues = torch.linalg.eigvalsh(objective.hessian(theta))[0]
    assert float(eigenvalues.min()) > -1e-12


# ---------------------------------------------------------------------------------------------
# b) the published spurious minimum and the census
# ---------------------------------------------------------------------------------------------


def test_safran_shamir_k7_spurious_minimum_is_reproduced() -> None:
    spec = LandscapeSpec(
        input_dim=7,
        teacher={"neurons": 7},
        student_width=7,
        starts=0,
        points=[{"weights": spurious_ansatz()}],
    )
    result = run_experiment(spec)
    assert isinstance(result, LandscapeResult)
    [point] = result.census.points
    assert point.loss == pytest.approx(0.023203, abs=1e-6)
    assert point.gradient_norm < 1e-9
    assert point.kind == "spurious_minimum" and point.index == 0 and point.nullity == 0
    assert point.eigenvalues[0] == pytest.approx(0.014, abs=5e-4)
    assert point.eigenvalues[-1] == pytest.approx(2.30, abs=0.01)
    assert point.symmetry.isotropy == "S6 x S1"
    assert point.symmetry.neuron_orbits == [[1, 2, 3, 4, 5, 6], [0]]
    assert point.symmetry.input_orbits == [[1, 2, 3, 4, 5, 6], [0]]
    assert point.supplied == [0]


def test_census_k4_finds_the_global_minimum_from_most_starts_and_its_minima_are_psd() -> None:
    spec = LandscapeSpec(input_dim=4, teacher={"neurons": 4}, student_width=4, starts=24, seed=5)
    census = run_experiment(spec).census
    assert census.converged + len(census.unconverged) == 24
    assert census.reached.get("global_minimum", 0) >= 0.8 * 24
    best = census.points[0]
    assert best.kind == "global_minimum" and best.symmetry.isotropy == "S4"
    assert sum(point.starts for point in census.points) == census.converged
    for point in census.points:
        if point.kind in ("global_minimum", "spurious_minimum"):
            assert min(point.eigenvalues) >= -1e-8


def test_starts_that_do_not_converge_are_reported_with_a_reason() -> None:
    spec = LandscapeSpec(input_dim=4, teacher={"neurons": 4}, starts=3, iterations=2, newton_steps=0)
    census = run_experiment(spec).census
    assert census.converged == 0 and census.points == []
    assert [u.start for u in census.unconverged] == [0, 1, 2]
    assert all("gradient norm" in u.reason for u in census.unconverged)


def test_empirical_loss_on_samples_has_the_teacher_as_zero_loss_minimum() -> None:
    spec = LandscapeSpec(input_dim=3, teacher={"neurons": 3}, student_width=3, starts=6, samples=3000)
    result = run_experiment(spec)
    assert result.loss == "samples (N = 3000)"
    best = result.census.points[0]
    assert best.kind == "global_minimum" and abs(best.loss) < 1e-12
    assert best.symmetry.isotropy == "S3"


# ---------------------------------------------------------------------------------------------
# c) symmetry: equality up to the group, isotropy
# ---------------------------------------------------------------------------------------------


def permuted(W: np.ndarray, seed: int) -> np.ndarray:
    """P W Q^T with independent random neuron and input permutations (a symmetry of L for V = I)."""
    rng = np.random.default_rng(seed)
    return W[rng.permutation(W.shape[0])][:, rng.permutation(W.shape[1])]


def test_points_equal_up_to_permutations_are_deduplicated_and_others_are_not() -> None:
    V, ones = np.eye(7), np.ones(7)
    spurious, global_min = np.array(spurious_ansatz()), np.eye(7)
    frames = [
        frame(W, ones, V) for W in (spurious, permuted(spurious, 1), global_min, permuted(global_min, 2))
    ]
    frames.append(frame(spurious + 1e-3 * np.random.default_rng(3).standard_normal((7, 7)), ones, V))
    assert deduplicate(frames, relabel=True, tolerance=1e-6) == [0, 0, 2, 2, 4]
    # without teacher relabelling only neuron permutations remain: a column permutation is new
    assert not same_point(frames[0], frames[1], relabel=False, tolerance=1e-6)
    # trained output weights: (c w_i, a_i / c) is the same point
    a, c = np.linspace(0.5, 2.0, 7), np.linspace(1.0, 3.0, 7)
    rescaled = frame(c[:, None] * spurious, a / c, V)
    assert same_point(frame(spurious, a, V), rescaled, relabel=True, tolerance=1e-9)


def test_isotropy_names_the_symmetric_groups_and_finds_identical_neurons() -> None:
    V, ones = np.eye(4), np.ones(4)
    assert isotropy(frame(np.eye(4), ones, V), True, 1e-6).name == "S4"
    generic = np.random.default_rng(4).standard_normal((4, 4))
    assert isotropy(frame(generic, ones, V), True, 1e-6).name == "S1 x S1 x S1 x S1"
    block = np.array([[1.0, 0.2, 0.2, 0.0], [0.2, 1.0, 0.2, 0.0], [0.2, 0.2, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    found = isotropy(frame(block, ones, V), True, 1e-6)
    assert found.name == "S3 x S1" and found.input_orbits == [[0, 1, 2], [3]]
    twins = np.vstack([np.eye(4)[:3], np.eye(4)[2:3]])
    assert isotropy(frame(twins, ones, V), True, 1e-6).identical_neurons == [[2, 3]]


# ---------------------------------------------------------------------------------------------
# d) symmetry-induced critical points (Simsek et al. 2021)
# ---------------------------------------------------------------------------------------------


def test_stirling_numbers_and_counts_agree_with_brute_force_enumeration() -> None:
    assert [stirling2(5, r) for r in range(6)] == [0, 1, 15, 25, 10, 1]
    assert count_T(3, 5) == 390
    for r in range(1, 4):
        for m in range(r, 7):
            assert count_T(r, m) == sum(1 for _ in maps(r, m, zeros=True))
            assert count_G(r, m) == sum(1 for _ in maps(r, m, zeros=False))
            # inclusion-exclusion over the neurons a map misses, an independent closed form
            assert count_T(r, m) == sum((-1) ** i * math.comb(r, i) * (r + 1 - i) ** m for i in range(r + 1))


def test_global_minimum_embeds_into_width_5_as_T_3_5_390_zero_loss_subspaces() -> None:
    spec = LandscapeSpec(
        problem="symmetry_embedding",
        input_dim=3,
        teacher={"neurons": 3},
        student_width=3,
        output_weights="trained",
        starts=4,
        embedding={"width": 5},
    )
    study = run_experiment(spec).embedding
    assert study is not None
    T = study.T
    assert (T.formula, T.enumerated, T.distinct, T.all_critical) == (390, 390, True, True)
    assert T.max_loss_change is not None and T.max_loss_change < 1e-12
    base = study.bases[0]
    assert base.loss < 1e-12 and base.G.formula == base.G.enumerated == 150 and base.G.all_critical
    assert all(point.critical and point.kind == "global_minimum" for point in base.points)


def test_splits_of_a_narrow_students_critical_point_stay_critical_zero_outgoing_neurons_do_not() -> None:
    """A width-2 student of a 3-neuron teacher: its best fit has positive loss. Splitting a neuron
    keeps it critical with the same loss; a zero-outgoing neuron with random incoming weights does not."""
    spec = LandscapeSpec(
        problem="symmetry_embedding",
        input_dim=3,
        teacher={"neurons": 3},
        student_width=2,
        output_weights="trained",
        starts=6,
        embedding={"width": 3, "split_ratios": [0.5, -0.5, 1.5]},
    )
    study = run_experiment(spec).embedding
    assert study is not None
    base = study.bases[0]
    assert base.loss > 1e-3
    splits = [point for point in base.points if point.construction == "split"]
    assert splits and all(point.critical and point.gradient_norm <= 1e-10 for point in splits)
    assert all(abs(point.loss_change) < 1e-12 for point in splits)
    assert {point.ratio for point in splits} == {0.5, -0.5, 1.5}
    [zero] = [point for point in base.points if point.construction == "zero_outgoing"]
    assert not zero.critical and zero.gradient_norm > 1e-4 and zero.kind == "not_critical"
    assert base.G.formula == base.G.enumerated == 6 and base.G.all_critical


# ---------------------------------------------------------------------------------------------
# e) the contract
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"input_dim": 3, "teacher": {"neurons": 4}}, "at most d = 3"),
        ({"student_width": 2, "points": [{"weights": [[1.0, 0, 0, 0]]}]}, "must be 2 rows"),
        ({"student_width": 1, "points": [{"weights": [[0.0, 0, 0, 0]]}]}, "not differentiable"),
        (
            {"student_width": 1, "points": [{"weights": [[1.0, 0, 0, 0]], "output": [2.0]}]},
            "output_weights is 'fixed'",
        ),
        ({"problem": "symmetry_embedding", "output_weights": "trained"}, "needs an `embedding`"),
        ({"problem": "symmetry_embedding", "embedding": {"width": 6}}, "set output_weights 'trained'"),
        (
            {"problem": "symmetry_embedding", "output_weights": "trained", "embedding": {"width": 4}},
            "must exceed",
        ),
        ({"starts": 0}, "nothing to analyse"),
        ({"teacher": {"neurons": 2, "weights": [[1.0, 0, 0, 0]]}}, "must be 2 rows"),
        ({"samples": 0}, "greater than or equal to 1"),
        ({"gradient_tolerance": 1e-20}, "greater than or equal to"),
        ({"hessian": "autograd"}, "Extra inputs"),
    ],
)
def test_invalid_specs_are_rejected_with_a_message_naming_the_problem(fields: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        LandscapeSpec(**fields)


def test_cost_names_the_budget_a_huge_census_exceeds() -> None:
    huge = LandscapeSpec(
        input_dim=32, teacher={"neurons": 32}, student_width=32, starts=1000, iterations=20000
    )
    reason = over_budget(huge.cost(), max_flops=5e12, max_memory_bytes=4 * 2**30)
    assert reason is not None and "compute budget" in reason
    example = LandscapeSpec.model_validate(LandscapeSpec.model_json_schema()["examples"][0])
    assert over_budget(example.cost(), max_flops=5e12, max_memory_bytes=4 * 2**30) is None
