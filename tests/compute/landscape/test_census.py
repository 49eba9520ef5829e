"""Large censuses of teacher-student critical points (issue 19), against exact answers.

A researcher counting rare spurious minima asks for many starts, run in chunks whose size does
not change the answer; chooses how starts are seeded, so that start s of a per_start census is the
only start of a job seeded seed + s and a census split into jobs merges into the same counts; gets
each class's frequency with an exact (Clopper-Pearson) 95% interval, checked against its closed
form at 0 of n, against scipy's binomial test and by its coverage; and reads each Hessian spectrum
grouped into eigenvalues with multiplicities, which at the symmetric points are the dimensions of
the isotypic components (Arjevani & Field 2020). CPU, float64.
"""

import math

import pytest
import torch
from pydantic import ValidationError
from scipy.stats import binom, binomtest

import schemas.landscape
from schemas import LandscapeResult, LandscapeSpec, over_budget
from schemas.landscape_results import UNCONVERGED_LISTED
from service.tables import tables
from workers.compute import run_experiment
from workers.compute.landscape.critical_points import lbfgs, multiplets
from workers.compute.landscape.frequency import clopper_pearson
from workers.compute.landscape.loss import Layout, PopulationLoss
from workers.compute.landscape.problem import initial_points

F64 = torch.float64
CPU = torch.device("cpu")
BUDGET = {"max_flops": 5e12, "max_memory_bytes": 4 * 2**30}  # the default job budget


def census_of(**fields: object) -> LandscapeResult:
    result = run_experiment(LandscapeSpec(**fields))
    assert isinstance(result, LandscapeResult)
    return result


def classes(result: LandscapeResult) -> list[tuple[str, float, int]]:
    return [(point.kind, round(point.loss, 9), point.starts) for point in result.census.points]


# ---------------------------------------------------------------------------------------------
# a) the confidence interval
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 10, 4000, 100_000])
def test_clopper_pearson_at_0_and_n_of_n_is_the_closed_form(n: int) -> None:
    lower, upper = clopper_pearson(0, n)
    assert lower == 0.0 and upper == pytest.approx(1 - 0.025 ** (1 / n), rel=1e-10)
    lower, upper = clopper_pearson(n, n)
    assert lower == pytest.approx(0.025 ** (1 / n), rel=1e-10) and upper == 1.0


def test_clopper_pearson_inverts_the_binomial_tails_and_agrees_with_scipys_binomial_test() -> None:
    """By definition P(X >= x | lower) = P(X <= x | upper) = 0.025; scipy's `binomtest` finds the
    same ends by root finding (to ~1e-9 relative, its solver's tolerance)."""
    for n in (1, 7, 24, 400, 4000):
        for x in sorted({0, 1, min(2, n), n // 3, n - 1, n}):
            lower, upper = clopper_pearson(x, n)
            if x > 0:
                assert binom.sf(x - 1, n, lower) == pytest.approx(0.025, rel=1e-9)
            if x < n:
                assert binom.cdf(x, n, upper) == pytest.approx(0.025, rel=1e-9)
            interval = binomtest(x, n).proportion_ci(confidence_level=0.95, method="exact")
            assert (lower, upper) == pytest.approx((interval.low, interval.high), rel=1e-8, abs=1e-15)


@pytest.mark.parametrize("p", [1 / 4000, 0.003, 0.05, 0.37])
def test_the_interval_covers_p_at_least_95_percent_of_the_time(p: float) -> None:
    """Coverage summed exactly over the binomial distribution of the count, n = 2000 starts."""
    n = 2000
    coverage = sum(
        binom.pmf(x, n, p) for x in range(n + 1) if clopper_pearson(x, n)[0] <= p <= clopper_pearson(x, n)[1]
    )
    assert coverage >= 0.95


def test_clopper_pearson_refuses_impossible_counts() -> None:
    with pytest.raises(ValueError, match="0 <= count <= trials"):
        clopper_pearson(3, 2)


# ---------------------------------------------------------------------------------------------
# b) Hessian eigenvalues grouped into multiplicities
# ---------------------------------------------------------------------------------------------


def test_multiplets_group_neighbours_within_the_stated_tolerance() -> None:
    assert multiplets([], 1e-6) == []
    grouped = multiplets([1.0, 1.0 + 1e-7, 2.0, 2.0 + 1e-5], 1e-6)
    assert [(count, round(value, 6)) for value, count, _ in grouped] == [(2, 1.0), (1, 2.0), (1, 2.00001)]
    assert grouped[0][2] == pytest.approx(1e-7)
    # the absolute floor: eigenvalues near zero are one group when within 1e-9
    assert [count for _, count, _ in multiplets([0.0, 5e-10, 1e-3], 1e-6)] == [2, 1]


@pytest.mark.parametrize("d", [5, 6])
def test_global_minimum_spectrum_has_the_isotypic_multiplicities(d: int) -> None:
    """W = V = I, a = 1: 1/4 - 1/(2 pi) on the d(d - 1)/2 skew directions, 1/4 + 1/(2 pi) with
    multiplicity d(d - 3)/2, two eigenvalues of multiplicity d - 1 and two simple ones
    (Arjevani & Field 2020; d^2 in all)."""
    identity = [[float(i == j) for j in range(d)] for i in range(d)]
    result = census_of(
        input_dim=d, teacher={"neurons": d}, student_width=d, starts=0, points=[{"weights": identity}]
    )
    [point] = result.census.points
    assert point.kind == "global_minimum" and point.probability is None and point.spectrum is not None
    groups = [(group.value, group.multiplicity) for group in point.spectrum]
    assert sorted(count for _, count in groups) == sorted(
        [d * (d - 1) // 2, d * (d - 3) // 2, d - 1, d - 1, 1, 1]
    )
    by_value = dict(groups)
    skew, symmetric = 0.25 - 1 / (2 * math.pi), 0.25 + 1 / (2 * math.pi)
    assert min(by_value) == pytest.approx(skew, abs=1e-12) and by_value[min(by_value)] == d * (d - 1) // 2
    [near] = [value for value in by_value if abs(value - symmetric) < 1e-9]
    assert by_value[near] == d * (d - 3) // 2
    assert all(group.spread < 1e-12 for group in point.spectrum)


def test_k7_spurious_minimum_spectrum_has_the_multiplicities_of_its_s6_isotropy() -> None:
    """Under S6 x S1 the 49 directions split as 5 trivial + 5 standard (dimension 5) + the exterior
    square (10) + the (4, 2) representation (9): twelve distinct eigenvalues."""
    rows = [[-0.633] + [0.186] * 6]
    for j in range(1, 7):
        row = [0.262] + [-0.035] * 6
        row[j] = 0.997
        rows.append(row)
    result = census_of(
        input_dim=7, teacher={"neurons": 7}, student_width=7, starts=0, points=[{"weights": rows}]
    )
    [point] = result.census.points
    assert point.symmetry.isotropy == "S6 x S1" and point.spectrum is not None
    assert sorted(group.multiplicity for group in point.spectrum) == sorted([1] * 5 + [5] * 5 + [10, 9])
    assert point.spectrum[0].value == pytest.approx(0.014059, abs=1e-6)


# ---------------------------------------------------------------------------------------------
# c) seeds and chunks
# ---------------------------------------------------------------------------------------------


def first_points(spec: LandscapeSpec) -> torch.Tensor:
    layout = Layout(spec.student_width, spec.input_dim, spec.output_weights == "trained")
    return torch.cat([theta for _, theta in initial_points(spec, layout, CPU)])


def test_per_start_start_s_is_the_only_start_of_a_job_seeded_seed_plus_s() -> None:
    fields = {"input_dim": 5, "teacher": {"neurons": 5}, "student_width": 5, "start_seeds": "per_start"}
    census = LandscapeSpec(**fields, starts=6, seed=100)
    starts = first_points(census)
    for s in range(6):
        alone = LandscapeSpec(**fields, starts=1, seed=100 + s)
        assert torch.equal(first_points(alone)[0], starts[s])
        # the same draw under the default scheme, whose single start is the generator's first draw
        assert torch.equal(first_points(alone.model_copy(update={"start_seeds": "sequential"}))[0], starts[s])
    sequential = first_points(LandscapeSpec(**{**fields, "start_seeds": "sequential"}, starts=6, seed=100))
    assert not torch.equal(sequential[1], starts[1])


def test_a_per_start_census_split_into_jobs_merges_into_the_same_counts() -> None:
    fields = {"input_dim": 6, "teacher": {"neurons": 6}, "student_width": 6, "start_seeds": "per_start"}
    whole = census_of(**fields, starts=40, seed=7)
    parts = [census_of(**fields, starts=10, seed=7 + 10 * part) for part in range(4)]
    merged: dict[float, int] = {}
    for part in parts:
        for point in part.census.points:
            merged[round(point.loss, 9)] = merged.get(round(point.loss, 9), 0) + point.starts
    assert merged == {loss: count for _, loss, count in classes(whole)}
    assert sum(part.census.did_not_converge.count for part in parts) == whole.census.did_not_converge.count


def test_sequential_starts_are_one_generators_draws_whatever_the_chunk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Start s is the s-th (n, d) block of randn(starts, n, d) from `seed` (what every earlier
    result used), also when the chunks split torch's 16-entry blocks; the census is the same."""
    spec = LandscapeSpec(input_dim=3, teacher={"neurons": 3}, student_width=3, starts=37, seed=11)
    expected = torch.randn(37, 3, 3, generator=torch.Generator().manual_seed(11), dtype=F64) / 3**0.5
    whole = run_experiment(spec)
    monkeypatch.setattr(schemas.landscape, "CHUNK_MAX", 5)
    assert spec.chunk_size() == 5
    assert torch.equal(first_points(spec), expected.reshape(37, 9))
    chunked = run_experiment(spec)
    assert chunked.census.chunks == 8 and whole.census.chunks == 1
    assert chunked.census.model_dump(exclude={"chunks"}) == whole.census.model_dump(exclude={"chunks"})


def test_progress_is_reported_after_every_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schemas.landscape, "CHUNK_MAX", 8)
    reports: list[tuple[float, str]] = []
    spec = LandscapeSpec(input_dim=3, teacher={"neurons": 3}, student_width=3, starts=20)
    run_experiment(spec, lambda fraction, message: reports.append((fraction, message)))
    polished = [message for _, message in reports if message.startswith("polished")]
    assert [message.split(":")[0] for message in polished] == [
        "polished starts 0-7 of 20",
        "polished starts 8-15 of 20",
        "polished starts 16-19 of 20",
    ]
    fractions = [fraction for fraction, _ in reports]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_each_starts_lbfgs_path_does_not_depend_on_its_batch() -> None:
    """Batched L-BFGS drops starts that stopped and searches only the starts still searching:
    a start alone takes the same iterations to the same point."""
    layout = Layout(5, 5, trained=False)
    objective = PopulationLoss(torch.eye(5, dtype=F64), layout)
    theta = torch.randn(12, layout.size, generator=torch.Generator().manual_seed(3), dtype=F64) / 5**0.5
    together = lbfgs(objective, theta, 400)
    for i in (0, 5, 11):
        alone = lbfgs(objective, theta[i : i + 1], 400)
        assert int(alone.iterations[0]) == int(together.iterations[i])
        torch.testing.assert_close(alone.theta[0], together.theta[i], atol=1e-12, rtol=0)


# ---------------------------------------------------------------------------------------------
# d) what a census reports
# ---------------------------------------------------------------------------------------------


def test_k10_census_gives_each_class_and_kind_its_frequency_and_interval() -> None:
    result = census_of(input_dim=10, teacher={"neurons": 10}, student_width=10, starts=64, seed=0)
    census = result.census
    assert census.kinds is not None and census.did_not_converge is not None
    total = sum(point.starts for point in census.points) + census.did_not_converge.count
    assert total == census.starts == 64
    for point in census.points:
        assert point.probability is not None and point.probability.trials == 64
        assert point.probability.count == point.starts
        assert (point.probability.lower, point.probability.upper) == pytest.approx(
            clopper_pearson(point.starts, 64), rel=1e-12
        )
        assert point.probability.lower <= point.probability.estimate <= point.probability.upper
    assert set(census.kinds) == {"global_minimum", "spurious_minimum", "saddle", "degenerate"}
    assert {kind: f.count for kind, f in census.kinds.items() if f.count} == census.reached
    assert census.kinds["saddle"].count == 0 and census.kinds["saddle"].upper == pytest.approx(
        1 - 0.025 ** (1 / 64)
    )
    spurious = [point for point in census.points if point.kind == "spurious_minimum"]
    assert spurious and spurious[0].symmetry.isotropy == "S9 x S1"
    assert spurious[0].loss == pytest.approx(0.018702, abs=1e-6)


def test_unconverged_starts_are_all_counted_and_the_first_ones_listed() -> None:
    result = census_of(
        input_dim=3,
        teacher={"neurons": 3},
        student_width=3,
        starts=UNCONVERGED_LISTED + 30,
        iterations=2,
        newton_steps=0,
        points=[{"weights": [[1.0, 0.1, 0.0], [0.0, 1.0, 0.1], [0.1, 0.0, 1.0]]}],
    )
    census = result.census
    failed = census.did_not_converge
    assert failed is not None and failed.count == failed.trials == UNCONVERGED_LISTED + 30
    assert failed.lower == pytest.approx(0.025 ** (1 / failed.trials)) and failed.upper == 1.0
    assert [u.start for u in census.unconverged[:-1]] == list(range(UNCONVERGED_LISTED))
    assert census.unconverged[-1].supplied == 0  # supplied points are always listed


def test_results_stored_before_the_census_fields_still_validate_and_tabulate() -> None:
    result = census_of(input_dim=4, teacher={"neurons": 4}, student_width=4, starts=8)
    document = result.model_dump(mode="json")
    for key in ("did_not_converge", "kinds", "chunks"):
        del document["census"][key]
    document["census"]["lbfgs_iterations"].pop("mean")
    for point in document["census"]["points"]:
        del point["probability"], point["spectrum"]
    old = LandscapeResult.model_validate(document)
    assert old.census.kinds is None and old.census.points[0].spectrum is None
    found = tables(document)
    assert set(found) == {"points", "eigenvalues"}
    assert found["points"].columns["probability"] == [None] * len(document["census"]["points"])
    assert {"multiplets", "kinds"} <= set(tables(result.model_dump(mode="json")))


# ---------------------------------------------------------------------------------------------
# e) the contract and the budget
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"starts": 100_001}, "less than or equal to 100000"),
        ({"start_seeds": "random"}, "'sequential' or 'per_start'"),
        ({"start_seeds": "per_start", "seed": 2**63 - 5, "starts": 10}, "per_start seeds"),
        ({"multiplicity_tolerance": 0.0}, "greater than 0"),
    ],
)
def test_invalid_census_specs_are_rejected_with_a_message(fields: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        LandscapeSpec(**fields)


def test_the_budget_affords_tens_of_thousands_of_starts_at_k10_and_names_the_limit_beyond() -> None:
    k10 = {"input_dim": 10, "teacher": {"neurons": 10}, "student_width": 10}
    assert (
        LandscapeSpec(**k10, starts=100_000, start_seeds="per_start", seed=2**63 - 100_000).starts == 100_000
    )
    assert over_budget(LandscapeSpec(**k10, starts=10_000).cost(), **BUDGET) is None
    reason = over_budget(LandscapeSpec(**k10, starts=100_000).cost(), **BUDGET)
    assert reason is not None and "compute budget" in reason and "memory" not in reason
    # memory is bounded by the chunk, not by the number of starts
    assert (
        LandscapeSpec(**k10, starts=100_000).cost().memory_bytes
        == LandscapeSpec(**k10, starts=5000).cost().memory_bytes
    )
    # at k = 20 a few hundred starts are seconds to minutes
    k20 = LandscapeSpec(input_dim=20, teacher={"neurons": 20}, student_width=20, starts=200)
    assert 2e11 < k20.cost().flops < 2e12
