"""Check suites: expectations on fields of job results, the way a lab's CI pins its science.

A suite (YAML) names cases; a case is a spec (inline, or the path of a spec file relative to the
suite) and expectations on its result:

    name: regression
    cases:
      - name: heavy ball converges linearly
        spec: train_small.json
        expect:
          - {path: "optimizers[name=heavy_ball].runs[0].fit.verdict", equals: linear}
          - {path: "kernels[kernel=analytic].lambda_min", approx: 0.0215, rel: 1e-3}
          - {path: "optimizers[name=gd].rate.mean", range: [0.9, 1.0]}

A path is dotted keys with list selectors: `[i]` indexes a list (negative from the end) and
`[key=value]` takes the first item whose `key` reads `value`. An expectation has one test:
`equals` (exactly), `approx` (|measured - approx| <= max(rel |approx|, abs); rel 1e-6 when no
tolerance is given) or `range: [lo, hi]` (inclusive, null for an open end).
"""

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.paths import PathError, is_number, parse_path, resolve, text

DEFAULT_REL = 1e-6


class Expectation(BaseModel):
    """One field of a result and the test it must pass: equals, approx (with rel/abs) or range."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, description="where the field is, e.g. spectrum.lambda_min")
    equals: Any = Field(None, description="the exact value expected")
    approx: float | None = Field(None, description="a number, within rel and abs tolerances")
    rel: float | None = Field(None, ge=0, description="relative tolerance of approx")
    abs: float | None = Field(None, ge=0, description="absolute tolerance of approx")
    range: tuple[float | None, float | None] | None = Field(
        None, description="[lo, hi], inclusive; null for an open end"
    )

    @model_validator(mode="after")
    def _one_test(self) -> "Expectation":
        parse_path(self.path)
        tests = {"equals", "approx", "range"} & self.model_fields_set
        if len(tests) != 1:
            raise ValueError(f"give exactly one of equals, approx, range (got {sorted(tests) or 'none'})")
        if self.test == "approx" and self.approx is None:
            raise ValueError("approx needs a number")
        if self.test != "approx" and {"rel", "abs"} & self.model_fields_set:
            raise ValueError("rel and abs are tolerances of approx")
        if self.test == "range":
            low, high = self.range or (None, None)
            if self.range is None or (low is not None and high is not None and low > high):
                raise ValueError("range needs [lo, hi] with lo <= hi")
        return self

    @property
    def test(self) -> str:
        return next(name for name in ("equals", "approx", "range") if name in self.model_fields_set)

    @property
    def target(self) -> float:
        """The number of an approx test (set, by validation)."""
        return self.approx or 0.0

    def tolerance(self, target: float) -> float:
        """The largest |measured - approx| that passes."""
        rel = DEFAULT_REL if self.rel is None and self.abs is None else self.rel or 0.0
        return max(rel * abs(target), self.abs or 0.0)

    def passes(self, measured: Any) -> bool:
        if self.test == "equals":
            both_bool = isinstance(measured, bool) and isinstance(self.equals, bool)
            return measured == self.equals and (both_bool or not isinstance(measured, bool))
        if not is_number(measured) or not math.isfinite(measured):
            return False
        if self.test == "approx":
            return abs(measured - self.target) <= self.tolerance(self.target)
        low, high = self.range or (None, None)
        return (low is None or low <= measured) and (high is None or measured <= high)

    def expected(self) -> str:
        """The test as a table writes it."""
        if self.test == "equals":
            return f"== {text(self.equals)}"
        if self.test == "approx":
            return f"{text(self.target)} ± {text(self.tolerance(self.target))}"
        low, high = self.range or (None, None)
        return f"in [{text(low) if low is not None else '-inf'}, {text(high) if high is not None else 'inf'}]"


class Case(BaseModel):
    """A spec and what its result must show."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    spec: dict[str, Any] | str = Field(description="the spec, or the path of a spec file from the suite")
    expect: list[Expectation] = Field(min_length=1)


class Suite(BaseModel):
    """Named cases, run together."""

    model_config = ConfigDict(extra="forbid")

    name: str = "checks"
    cases: list[Case] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> "Suite":
        names = [case.name for case in self.cases]
        if len(set(names)) != len(names):
            raise ValueError(f"case names must differ: {sorted({n for n in names if names.count(n) > 1})}")
        return self


def read_document(path: Path) -> Any:
    """A JSON or YAML file's content; ValueError with the file's name when it cannot be read."""
    try:
        content = path.read_text()
        return json.loads(content) if path.suffix == ".json" else yaml.safe_load(content)
    except OSError as error:
        raise ValueError(f"{path}: {error.strerror or error}") from None
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise ValueError(
            f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {error}"
        ) from None


def read_spec(path: Path) -> dict[str, Any]:
    """A spec file: the spec itself, or a request body `{"spec": ..., ...}` holding it."""
    document = read_document(path)
    if isinstance(document, dict) and "spec" in document and "kind" not in document:
        document = document["spec"]
    if not isinstance(document, dict):
        raise ValueError(f"{path}: a spec is a mapping, found {type(document).__name__}")
    return document


def load_suite(path: Path) -> Suite:
    """A suite file, with every spec given as a path read from that path (relative to the suite)."""
    suite = Suite.model_validate(read_document(path))
    cases = [
        case.model_copy(update={"spec": read_spec(path.parent / case.spec)})
        if isinstance(case.spec, str)
        else case
        for case in suite.cases
    ]
    return suite.model_copy(update={"cases": cases})


@dataclass(frozen=True)
class Outcome:
    """One expectation of one case, checked: `error` says why nothing could be measured."""

    case: str
    path: str
    expected: str
    measured: str
    passed: bool
    error: str | None = None


def evaluate(case: Case, result: Any, failure: str | None = None) -> list[Outcome]:
    """Check every expectation of `case` on its result, or fail them all with `failure` (the
    job failed, or never ran)."""
    outcomes = []
    for expectation in case.expect:
        expected = expectation.expected()
        if failure is not None:
            outcomes.append(Outcome(case.name, expectation.path, expected, "-", False, failure))
            continue
        try:
            measured = resolve(result, expectation.path)
        except PathError as error:
            outcomes.append(Outcome(case.name, expectation.path, expected, "missing", False, str(error)))
            continue
        passed = expectation.passes(measured)
        outcomes.append(Outcome(case.name, expectation.path, expected, text(measured), passed))
    return outcomes
