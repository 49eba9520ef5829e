"""The pydantic contract: bounds, unknown fields, NaN, identity and budgets."""

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from pydantic import BaseModel, TypeAdapter, ValidationError

from schemas import ExperimentSpec, JobRequest, KernelSpec, over_budget, spec_hash
from schemas.jobs import SubmittedSpec
from schemas.sweep import SweepSpec
from service.server.settings import ServerSettings
from workers.version import ENGINE_VERSION

from .spec_strategies import documents


def error_locs(body: dict) -> list[tuple]:
    with pytest.raises(ValidationError) as info:
        JobRequest.model_validate(body)
    return [error["loc"] for error in info.value.errors()]


def kernel(**dataset: object) -> dict:
    return {"spec": {"kind": "kernel", "dataset": {"name": "sphere", **dataset}}}


def test_defaults_make_a_runnable_spec() -> None:
    request = JobRequest.model_validate({"spec": {"kind": "kernel"}})
    assert request.reuse is True
    assert request.spec.dataset.n == 256
    assert request.spec.empirical is None and request.spec.network.name == "two_layer"


@pytest.mark.parametrize("n", [0, 1, 10**7])
def test_dataset_size_out_of_bounds_names_the_field(n: int) -> None:
    assert error_locs(kernel(n=n)) == [("spec", "kernel", "dataset", "sphere", "n")]


def test_unknown_fields_are_rejected_at_every_level() -> None:
    body = kernel(n=8)
    body["spec"]["dataset"]["colour"] = "red"
    body["spec"]["surprise"] = 1
    locs = error_locs(body)
    assert ("spec", "kernel", "surprise") in locs
    assert ("spec", "kernel", "dataset", "sphere", "colour") in locs


def test_unknown_kind_is_rejected() -> None:
    assert error_locs({"spec": {"kind": "alchemy"}}) == [("spec",)]


def test_nan_in_inline_data_is_rejected() -> None:
    body = {
        "spec": {
            "kind": "kernel",
            "dataset": {"name": "inline", "X": [[1.0, float("nan")], [0.0, 1.0]], "y": [1, 2]},
        }
    }
    assert error_locs(body) == [("spec", "kernel", "dataset", "inline", "X", 0, 1)]


@pytest.mark.parametrize(
    ("X", "y", "message"),
    [
        ([[1.0, 0.0], [0.0]], [1.0, 2.0], "not rectangular"),
        ([[1.0, 0.0], [0.0, 1.0]], [1.0, 2.0, 3.0], "y has 3 values but X has 2 rows"),
        ([[], []], [1.0, 2.0], "between 1 and"),
    ],
)
def test_inline_data_must_be_consistent(X: list, y: list, message: str) -> None:
    body = {"spec": {"kind": "kernel", "dataset": {"name": "inline", "X": X, "y": y}}}
    with pytest.raises(ValidationError, match=message):
        JobRequest.model_validate(body)


def test_identity_fills_defaults_and_ignores_key_order() -> None:
    explicit = KernelSpec.model_validate(
        {"dataset": {"n": 256, "name": "sphere", "d": 10, "seed": 0}, "kind": "kernel", "empirical": None}
    )
    implicit = KernelSpec.model_validate({"kind": "kernel"})
    assert spec_hash(explicit, "1") == spec_hash(implicit, "1")
    assert spec_hash(explicit, "1") != spec_hash(explicit, "2")
    other = KernelSpec.model_validate({"kind": "kernel", "dataset": {"name": "sphere", "seed": 1}})
    assert spec_hash(other, "1") != spec_hash(implicit, "1")


def test_budget_names_the_limit_and_the_excess() -> None:
    spec = KernelSpec.model_validate(
        {"dataset": {"name": "sphere", "n": 4096}, "empirical": {"widths": [2**22]}}
    )
    cost = spec.cost()
    assert cost.flops > 1e14
    reason = over_budget(cost, max_flops=5e12, max_memory_bytes=4 * 2**30)
    assert reason is not None and "compute budget" in reason and "x)" in reason
    reason = over_budget(cost, max_flops=1e20, max_memory_bytes=2**20)
    assert reason is not None and "memory budget" in reason
    assert over_budget(cost, max_flops=1e20, max_memory_bytes=1e20) is None


@pytest.mark.parametrize(
    "path", sorted((Path(__file__).parent.parent / "examples").glob("*.json")), ids=lambda path: path.name
)
def test_every_example_is_a_request_within_the_default_budget(path: Path) -> None:
    request = JobRequest.model_validate_json(path.read_text())
    settings = ServerSettings()
    assert over_budget(request.spec.cost(), settings.max_flops, settings.max_memory_bytes) is None
    children = request.spec.children if isinstance(request.spec, SweepSpec) else []
    for spec in [request.spec, *children]:
        assert_round_trips(spec)


def stored(spec: BaseModel) -> Any:
    """What a worker reads back: the API's JSON dump, through the store's JSON column."""
    return json.loads(json.dumps(spec.model_dump(mode="json")))


def assert_round_trips(spec: BaseModel) -> None:
    """The stored spec validates again as the same spec, with the same identity."""
    again = SUBMITTED.validate_python(stored(spec))
    assert again == spec
    assert spec_hash(again, ENGINE_VERSION) == spec_hash(spec, ENGINE_VERSION)


SUBMITTED = TypeAdapter(SubmittedSpec)
EXPERIMENT_SCHEMA = TypeAdapter(ExperimentSpec).json_schema()


def schema_of(kind: str) -> dict[str, Any]:
    """The JSON Schema of one experiment kind, with the shared definitions."""
    name = EXPERIMENT_SCHEMA["discriminator"]["mapping"][kind].rsplit("/", 1)[1]
    return {**EXPERIMENT_SCHEMA["$defs"][name], "$defs": EXPERIMENT_SCHEMA["$defs"]}


@pytest.mark.parametrize("kind", ["kernel", "train", "ode", "landscape", "convex"])
def test_every_generated_spec_round_trips_through_the_store(kind: str) -> None:
    """Documents drawn from the published JSON Schema: each one the contract accepts is stored
    as its dump and must come back as the same spec (a dump that fills a default the validators
    then refuse, as `gamma: critical` beside lr and momentum once did, fails here)."""
    accepted = []

    @settings(
        max_examples=400,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(documents(schema_of(kind)))
    def round_trip(document: dict[str, Any]) -> None:
        try:
            spec = SUBMITTED.validate_python(document)
        except ValidationError:
            return  # drawn from the schema, refused by a cross-field rule: not a stored spec
        accepted.append(spec)
        assert_round_trips(spec)

    round_trip()
    assert len(accepted) >= 40, "too few generated documents validate for the test to mean much"
