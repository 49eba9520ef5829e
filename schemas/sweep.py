"""Sweeps: a base spec of any kind and axes over its fields, fanned out as child jobs."""

import itertools
import math
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from schemas.common import ResultModel, SpecModel, validation_summary
from schemas.costs import Cost
from schemas.experiments import ExperimentSpec
from schemas.paths import PathError, assign, parse_path

CHILDREN_MAX = 256
AXES_MAX = 4
SINGLE = TypeAdapter(ExperimentSpec)

SWEEP_EXAMPLE = {
    "kind": "sweep",
    "base": {
        "kind": "train",
        "dataset": {"name": "sphere", "n": 32, "d": 8, "seed": 0},
        "optimizers": [{"name": "heavy_ball"}],
        "steps": 300,
    },
    "axes": [{"path": "width", "values": [256, 1024, 4096]}],
    "metrics": [
        {"name": "rate", "path": "optimizers[0].runs[0].fit.rate"},
        {"name": "final_loss", "path": "optimizers[0].runs[0].final_loss"},
    ],
}

Scalar = str | int | float | bool | None
AxisValue = Scalar | list[Any] | dict[str, Any]


def readable(path: str) -> str:
    """The path, once it parses (a PathError is the ValueError pydantic reports)."""
    parse_path(path)
    return path


ReadablePath = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(readable)]


class Axis(SpecModel):
    """One field of the base spec and the values it takes."""

    path: ReadablePath = Field(description="where in the base spec, e.g. `width`, `optimizers[0].lr`")
    values: list[AxisValue] = Field(min_length=1, max_length=CHILDREN_MAX)


class Metric(SpecModel):
    """A column of the table: a field of each child's result, by path; the path may depend on
    the child's kind (a baseline of another kind keeps its number elsewhere). A path with `[*]`
    reads a list, which `reduce` can summarise (e.g. the mean over replicates)."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$")
    path: ReadablePath | dict[str, ReadablePath] = Field(
        description="e.g. `optimizers[name=gd].rate.mean`, or {kind: path}"
    )
    reduce: Literal["none", "mean", "min", "max"] = Field(
        "none", description="summary of a list of numbers read through `[*]`"
    )

    def path_for(self, kind: str) -> str | None:
        return self.path if isinstance(self.path, str) else self.path.get(kind)


class Baseline(SpecModel):
    """A spec run beside the grid, as a row of its own (e.g. kernel regression next to nets)."""

    name: str = Field(min_length=1, max_length=64)
    spec: dict[str, Any] = Field(description="a spec of any kind but sweep")


class SweepSpec(SpecModel):
    """A grid over fields of a base spec. Each grid point is a child job of its own (own id,
    status, result and cache reuse), run in parallel on however many workers exist; the sweep
    ends when every child has, with a table of the chosen metrics."""

    kind: Literal["sweep"] = "sweep"
    base: dict[str, Any] = Field(description="a spec of any other kind; the axes set fields in it")
    axes: list[Axis] = Field(min_length=1, max_length=AXES_MAX)
    mode: Literal["product", "zip"] = Field(
        "product", description="product: every combination; zip: the i-th values of every axis together"
    )
    metrics: list[Metric] = Field(default_factory=list, max_length=16)
    baselines: list[Baseline] = Field(default_factory=list, max_length=8)

    model_config = ConfigDict(json_schema_extra={"examples": [SWEEP_EXAMPLE]})

    @field_validator("base")
    @classmethod
    def _single(cls, base: dict[str, Any]) -> dict[str, Any]:
        if base.get("kind") == "sweep":
            raise ValueError("a sweep's base cannot itself be a sweep")
        return base

    @model_validator(mode="after")
    def _grid(self) -> "SweepSpec":
        if self.mode == "zip" and len({len(axis.values) for axis in self.axes}) > 1:
            raise ValueError(
                "zip needs axes of equal length: " + ", ".join(str(len(a.values)) for a in self.axes)
            )
        if self.size() + len(self.baselines) > CHILDREN_MAX:
            raise ValueError(
                f"the grid has {self.size()} points and {len(self.baselines)} baselines; "
                f"a sweep has at most {CHILDREN_MAX} children"
            )
        if len({axis.path for axis in self.axes}) < len(self.axes):
            raise ValueError("two axes set the same path")
        if len({metric.name for metric in self.metrics}) < len(self.metrics):
            raise ValueError("two metrics have the same name")
        _ = self.children  # every grid point must be a valid spec (built once, kept)
        return self

    def size(self) -> int:
        """The number of grid points, counted without building the grid."""
        lengths = [len(axis.values) for axis in self.axes]
        return lengths[0] if self.mode == "zip" else math.prod(lengths)

    def points(self) -> list[tuple[Any, ...]]:
        """The grid: one tuple of axis values per child, in table order."""
        columns = [axis.values for axis in self.axes]
        return list(zip(*columns, strict=True) if self.mode == "zip" else itertools.product(*columns))

    def labels(self) -> list[tuple[dict[str, Any], str | None]]:
        """Each child's label, in `children` order: its axis values (path -> value) and None for
        a grid point, no values and the name for a baseline."""
        points = [
            ({axis.path: value for axis, value in zip(self.axes, point, strict=True)}, None)
            for point in self.points()
        ]
        return points + [({}, baseline.name) for baseline in self.baselines]

    @cached_property
    def children(self) -> list[Any]:
        """The validated spec of each grid point, then of each baseline; ValueError names the
        first invalid one."""
        specs = []
        for number, point in enumerate(self.points()):
            document = self.base
            where = ", ".join(f"{axis.path}={value!r}" for axis, value in zip(self.axes, point, strict=True))
            try:
                for axis, value in zip(self.axes, point, strict=True):
                    document = assign(document, axis.path, value)
                specs.append(SINGLE.validate_python(document))
            except (PathError, ValidationError) as error:
                raise ValueError(f"grid point {number} ({where}): {_first_error(error)}") from error
        for baseline in self.baselines:
            if baseline.spec.get("kind") == "sweep":
                raise ValueError(f"baseline {baseline.name!r} cannot be a sweep")
            try:
                specs.append(SINGLE.validate_python(baseline.spec))
            except ValidationError as error:
                raise ValueError(f"baseline {baseline.name!r}: {_first_error(error)}") from error
        return specs

    def cost(self) -> Cost:
        """All children together: their flops add up, the largest memory counts."""
        costs = [child.cost() for child in self.children]
        return Cost(flops=sum(c.flops for c in costs), memory_bytes=max(c.memory_bytes for c in costs))


def _first_error(error: Exception) -> str:
    return validation_summary(error, limit=1) if isinstance(error, ValidationError) else str(error)


class SweepRow(ResultModel):
    """One grid point (or baseline): its axis values, its child job, and the metrics read from
    its result."""

    values: dict[str, Any] = Field(description="axis path -> value (empty for a baseline)")
    baseline: str | None = Field(None, description="the baseline's name; null for a grid point")
    job: str = Field(description="the child job's id")
    status: str
    cached: bool = Field(
        description="an identical job (finished, or queued or running at submit) answered this point"
    )
    metrics: dict[str, Any] = Field(description="metric name -> value (null when absent)")
    error: str | None = None


class Trend(ResultModel):
    """How a numeric metric moves along a numeric axis: Kendall's tau between the axis value and
    the metric over all rows where both are numbers (ties count for neither)."""

    axis: str
    metric: str
    tau: float | None
    direction: Literal["up", "down", "none", "undetermined"] = Field(
        description="|tau| >= 0.5 gives up/down; fewer than 3 usable rows: undetermined"
    )


class SweepResult(ResultModel):
    kind: Literal["sweep"] = "sweep"
    axes: list[str]
    metrics: list[str]
    rows: list[SweepRow]
    counts: dict[str, int] = Field(description="children per final status")
    trends: list[Trend]
