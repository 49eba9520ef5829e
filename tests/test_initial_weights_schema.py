"""Initial weights in the contract (schemas/weights.py): a train or ode spec takes the net's
weights by name, and anything that is not exactly the net's parameters, in their shapes, finite
and within the size limit, is refused naming the field and the reason."""

import math
from typing import Any

import pytest
from pydantic import ValidationError

from schemas import JobRequest, TrainSpec, spec_hash
from schemas.networks import FullyConnected, TwoLayerNet, parameter_count
from schemas.weights import INITIAL_NUMBERS_MAX, parameter_shapes

DATA = {"name": "sphere", "n": 8, "d": 3, "seed": 0}
W = [[0.5, -1.0, 0.25], [1.0, 0.0, -0.5], [0.0, 2.0, 1.0], [-1.5, 0.5, 0.5]]  # (4, 3): width 4, d 3
A = [1.0, -1.0, 0.5, -0.5]


def train(initial: Any, **fields: Any) -> dict[str, Any]:
    return {"kind": "train", "dataset": DATA, "width": 4, "initial": initial, **fields}


def refusal(spec: dict[str, Any]) -> tuple[tuple, str]:
    """The one error of the submit: its location and message."""
    with pytest.raises(ValidationError) as raised:
        JobRequest.model_validate({"spec": spec})
    [error] = raised.value.errors()
    return error["loc"], error["msg"]


def test_a_train_spec_takes_the_nets_weights_by_name() -> None:
    spec = TrainSpec.model_validate(train({"params": {"W": W, "a": A}}))
    assert spec.initial is not None and spec.initial.params["a"] == A
    integers = TrainSpec.model_validate(train({"params": {"W": [[1, 0, 0]] * 4, "a": [1, -1, 1, -1]}}))
    assert integers.initial is not None and integers.initial.params["W"][0] == [1.0, 0.0, 0.0]
    deep = {"name": "fully_connected", "depth": 3}
    params = {"W1": W, "W2": [[0.0] * 4] * 4, "W3": [A]}
    assert TrainSpec.model_validate(train({"params": params}, network=deep)).initial is not None


def test_given_weights_are_part_of_the_jobs_identity() -> None:
    spec = TrainSpec.model_validate(train({"params": {"W": W, "a": A}}))
    again = TrainSpec.model_validate(spec.model_dump(mode="json"))
    assert again == spec and spec_hash(again, "1") == spec_hash(spec, "1")
    other = TrainSpec.model_validate(train({"params": {"W": W, "a": [*A[:3], 0.0]}}))
    seeded = TrainSpec.model_validate(train(None))
    assert len({spec_hash(one, "1") for one in (spec, other, seeded)}) == 3


TRAIN_LOC = ("spec", "train", "initial")


@pytest.mark.parametrize(
    ("params", "loc", "message"),
    [
        (
            {"W": W[:3], "a": A},
            TRAIN_LOC,
            "W has shape (3, 3), but the two_layer net at width 4 on d = 3 has",
        ),
        ({"W": [row[:2] for row in W], "a": A}, TRAIN_LOC, "W has shape (4, 2)"),
        ({"W": W, "a": [[value] for value in A]}, TRAIN_LOC, "a has shape (4, 1)"),
        ({"W": W}, TRAIN_LOC, "a missing (the two_layer net at width 4 on d = 3 has W (4, 3), a (4,))"),
        ({"W": W, "a": A, "b": [0.0]}, TRAIN_LOC, "b not a parameter of the net"),
        ({"W1": W, "a": A}, TRAIN_LOC, "W missing"),
        ({"W": [W[0], W[1][:2], *W[2:]], "a": A}, (*TRAIN_LOC, "params"), "rows have lengths [2, 3]"),
        ({"W": W, "a": [1.0, math.nan, 0.0, 0.0]}, (*TRAIN_LOC, "params", "a", "vector", 1), "finite"),
        ({"W": W, "a": [1.0, math.inf, 0.0, 0.0]}, (*TRAIN_LOC, "params", "a", "vector", 1), "finite"),
        (
            {"W": [[1e13, 0.0, 0.0], *W[1:]], "a": A},
            (*TRAIN_LOC, "params", "W", "matrix", 0, 0),
            "less than or equal to 1000000000000",
        ),
        ({"W": W, "a": ["1", 0.0, 0.0, 0.0]}, (*TRAIN_LOC, "params", "a", "vector", 0), "valid number"),
    ],
    ids=[
        "rows",
        "columns",
        "rank",
        "missing",
        "extra",
        "renamed",
        "ragged",
        "nan",
        "inf",
        "huge",
        "string",
    ],
)
def test_weights_that_are_not_the_nets_are_refused(params: dict[str, Any], loc: tuple, message: str) -> None:
    where, why = refusal(train({"params": params}))
    assert where == loc and message in why, (where, why)


def test_more_than_two_to_the_twenty_numbers_are_refused() -> None:
    rows = INITIAL_NUMBERS_MAX // 1024 + 1
    spec = {**train({"params": {"W": [[0.0] * 1024] * rows, "a": [0.0] * rows}}), "width": rows}
    spec["dataset"] = {**DATA, "d": 1024}
    where, why = refusal(spec)
    assert where == (*TRAIN_LOC, "params") and f"more than {INITIAL_NUMBERS_MAX} (2^20)" in why, why


ODE = {"kind": "ode", "dataset": DATA, "kernel": "empirical_init", "width": 4}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kernel": "analytic", "width": None}, "need a finite net: kernel 'empirical_init'"),
        ({"discrete": {"network_width": 8}}, "width 4 and discrete.network_width 8 must be equal"),
        ({"parameter_space": {}}, "parameter_space compares seeded nets of several widths"),
        ({"width": 5}, "W has shape (4, 3), but the two_layer net at width 5"),
    ],
    ids=["no-finite-net", "two-widths", "parameter-space", "shape"],
)
def test_an_ode_spec_takes_weights_for_its_one_finite_net(fields: dict[str, Any], message: str) -> None:
    initial = {"params": {"W": W, "a": A}}
    for accepted in (
        {**ODE, "discrete": {"network_width": 4}},
        {**ODE, "kernel": "analytic", "width": None, "discrete": {"network_width": 4}},
    ):
        JobRequest.model_validate({"spec": {**accepted, "initial": initial}})
    where, why = refusal({**ODE, "initial": initial, **fields})
    assert where == ("spec", "ode", "initial") and message in why, why


@pytest.mark.parametrize(
    "network",
    [
        TwoLayerNet(),
        FullyConnected(depth=2),
        FullyConnected(depth=4),
        FullyConnected(depth=3, b_std=0.1),
        FullyConnected(depth=3, b_std=[0.0, 0.5, 0.0]),
    ],
    ids=["two_layer", "fully_connected-2", "fully_connected-4", "biases", "one-bias"],
)
def test_the_parameter_count_is_the_parameter_shapes_added_up(network: TwoLayerNet | FullyConnected) -> None:
    shapes = parameter_shapes(network, 5, 7)
    assert parameter_count(network, 5, 7) == sum(math.prod(shape) for shape in shapes.values())
    assert shapes["W1" if "W1" in shapes else "W"] == (7, 5)  # the first layer: (m, d)
