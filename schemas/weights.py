"""A finite net's parameters by name and shape, and initial weights given inline.

`parameter_shapes` is the one home of those shapes: `init_params` (workers/compute/networks.py)
draws exactly them, `parameter_count` (schemas/networks.py) adds them up, and given initial
weights are checked against them.
"""

import math
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import ConfigDict, Discriminator, Field, Tag, field_validator

from schemas.common import SpecModel
from schemas.datasets import VALUE_MAX

if TYPE_CHECKING:
    from schemas.networks import NetworkSpec

INITIAL_NUMBERS_MAX = 2**20
"""Most numbers of given initial weights, all parameters together (8 MiB in float64)."""

CHECKSUM = (
    "sha256 over the parameters in sorted name order (W1, W10, W2, ..., a, b1), of each its values "
    "as C-order little-endian float64 bytes (a float32 run: its float32 values, widened). With "
    "numpy: h = hashlib.sha256(); for name in sorted(params): "
    'h.update(np.ascontiguousarray(params[name], dtype="<f8").tobytes()); then h.hexdigest()'
)
"""How `initial_checksum` is computed (workers/compute/weights.py computes it)."""

Weight = Annotated[float, Field(ge=-VALUE_MAX, le=VALUE_MAX)]


def parameter_shapes(network: "NetworkSpec", d: int, m: int) -> dict[str, tuple[int, ...]]:
    """name -> shape of every parameter of the net at width m on d inputs, trained or not, in the
    order `init_params` draws them: two_layer W (m, d), a (m,); fully_connected W1 (m, d),
    W2 .. W{L-1} (m, m), W{L} (1, m), then b{l} (m,) (the readout's b{L}: (1,)) for each layer
    with b_std_l > 0."""
    if network.name == "two_layer":
        return {"W": (m, d), "a": (m,)}
    depth = network.depth
    weights = {"W1": (m, d), **{f"W{layer}": (m, m) for layer in range(2, depth)}, f"W{depth}": (1, m)}
    stds = enumerate(network.bias_stds(), start=1)
    return weights | {f"b{layer}": (m,) if layer < depth else (1,) for layer, std in stds if std > 0}


def _rank(values: Any) -> str:
    return "matrix" if isinstance(values, list) and values and isinstance(values[0], list) else "vector"


Array = Annotated[
    Annotated[list[Weight], Tag("vector")] | Annotated[list[list[Weight]], Tag("matrix")],
    Discriminator(_rank),
]
"""A vector as a list of numbers, or a matrix as a list of rows (numpy's `tolist()`)."""


def shape_of(values: list[float] | list[list[float]]) -> tuple[int, ...]:
    """The shape of a validated Array (its rows are checked to be of one length)."""
    if values and isinstance(values[0], list):
        return (len(values), len(values[0]))
    return (len(values),)


class InitialWeights(SpecModel):
    """The net's weights at step 0, given inline instead of drawn from the seed."""

    params: dict[str, Array] = Field(
        description="every parameter of the net by its name, with its exact shape at the job's width m "
        "and input dimension d: two_layer W (m, d) and a (m,); fully_connected W1 (m, d), W2 .. "
        "W{L-1} (m, m), W{L} (1, m), and b{l} (m,) (b{L}: (1,)) for each layer l with b_std_l > 0 "
        "(a matrix as a list of rows, as numpy's tolist() writes it); "
        f"finite numbers of magnitude at most {VALUE_MAX:g}, at most {INITIAL_NUMBERS_MAX} (2^20) "
        "in all (an 8 MiB request body holds about 400000 written at full precision). A layer that "
        "is not trained (`a` when only the first layer is) keeps its given values",
    )

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"params": {"W": [[0.5, -1.0], [1.5, 0.25]], "a": [1.0, -1.0]}}]}
    )

    @field_validator("params")
    @classmethod
    def _rectangular_and_small(cls, params: dict[str, list[float] | list[list[float]]]) -> dict[str, Any]:
        for name, values in params.items():
            if values and isinstance(values[0], list):
                lengths = sorted({len(row) for row in values})
                if len(lengths) > 1:
                    raise ValueError(f"{name} is not rectangular: its rows have lengths {lengths}")
        total = sum(math.prod(shape_of(values)) for values in params.values())
        if total > INITIAL_NUMBERS_MAX:
            raise ValueError(f"the weights hold {total} numbers, more than {INITIAL_NUMBERS_MAX} (2^20)")
        return params


def check_initial(initial: InitialWeights, network: "NetworkSpec", d: int, m: int) -> None:
    """Raise ValueError unless `initial` gives exactly the net's parameters, in their shapes."""
    expected = parameter_shapes(network, d, m)
    wanted = ", ".join(f"{name} {shape}" for name, shape in expected.items())
    where = f"the {network.name} net at width {m} on d = {d} has {wanted}"
    missing = [name for name in expected if name not in initial.params]
    extra = [name for name in initial.params if name not in expected]
    if missing:
        raise ValueError(f"initial weights: {', '.join(missing)} missing ({where})")
    if extra:
        raise ValueError(f"initial weights: {', '.join(extra)} not a parameter of the net ({where})")
    for name, shape in expected.items():
        given = shape_of(initial.params[name])
        if given != shape:
            raise ValueError(f"initial weights: {name} has shape {given}, but {where}")
