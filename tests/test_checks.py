"""Check suites without a service: paths into result documents, expectations, suite files and
their JUnit report."""

import json
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from schemas.paths import PathError, parse_path, resolve
from service.client.checks import Case, Expectation, evaluate, load_suite
from service.client.junit import junit

RESULT = {
    "kind": "train",
    "kernels": [{"kernel": "analytic", "lambda_min": 0.12}, {"kernel": "empirical_init", "lambda_min": 0.13}],
    "optimizers": [
        {
            "name": "gd",
            "rate": {"mean": 0.83},
            "runs": [{"fit": {"verdict": "linear", "steps_to": {"1e-6": 58}}}],
        },
        {
            "name": "heavy_ball",
            "rate": None,
            "runs": [{"fit": {"verdict": "sublinear"}}, {"fit": {"verdict": "linear"}}],
        },
    ],
    "empirical": {"rows": [{"width": 1024, "converged": True}, {"width": 4096, "converged": False}]},
}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("kind", "train"),
        ("optimizers[name=gd].rate.mean", 0.83),
        ("optimizers[0].runs[0].fit.verdict", "linear"),
        ("optimizers[name=heavy_ball].runs[-1].fit.verdict", "linear"),
        ("optimizers[ name = heavy_ball ].runs[0].fit.verdict", "sublinear"),
        ("optimizers[1].rate", None),
        ("kernels[kernel=analytic].lambda_min", 0.12),
        ("optimizers[name=gd].runs[0].fit.steps_to.1e-6", 58),
        ("empirical.rows[width=4096].converged", False),
        ("empirical.rows[converged=true].width", 1024),
    ],
)
def test_a_path_finds_its_field(path: str, value: object) -> None:
    assert resolve(RESULT, path) == value


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("spectrum.lambda_min", "the result has no field 'spectrum' (fields: kind, kernels"),
        ("optimizers[name=adam].rate", "optimizers has no item with name=adam (name: gd, heavy_ball)"),
        ("optimizers[5].rate", "optimizers has 2 items, no [5]"),
        ("optimizers[-3].rate", "optimizers has 2 items, no [-3]"),
        ("kind[0]", "kind is not a list"),
        ("kind.name", "kind is not an object"),
        ("optimizers[1].rate.mean", "optimizers[1].rate is not an object"),
        ("optimizers[name=gd].runs[0].fit.speed", "optimizers[name=gd].runs[0].fit has no field 'speed'"),
    ],
)
def test_a_path_that_names_nothing_says_where_it_stopped(path: str, message: str) -> None:
    with pytest.raises(PathError, match=re.escape(message)):
        resolve(RESULT, path)


@pytest.mark.parametrize("path", ["", ".kind", "kind.", "a..b", "runs[", "runs[x]", "runs[=x]", "runs]"])
def test_a_malformed_path_is_refused(path: str) -> None:
    with pytest.raises(PathError):
        parse_path(path)


@pytest.mark.parametrize(
    ("expectation", "measured", "passes"),
    [
        ({"equals": "linear"}, "linear", True),
        ({"equals": "linear"}, "sublinear", False),
        ({"equals": 128}, 128, True),
        ({"equals": 1}, True, False),
        ({"equals": True}, True, True),
        ({"equals": None}, None, True),
        ({"approx": 0.5}, 0.5 + 4e-7, True),
        ({"approx": 0.5}, 0.5 + 6e-7, False),
        ({"approx": 0.5, "rel": 0.1}, 0.549, True),
        ({"approx": 0.5, "rel": 0.1}, 0.551, False),
        ({"approx": 1.0, "abs": 0.02}, 0.981, True),
        ({"approx": 0.0, "abs": 1e-9}, -5e-10, True),
        ({"approx": 1.0, "rel": 0.01, "abs": 0.1}, 1.09, True),
        ({"approx": 0.5}, "0.5", False),
        ({"approx": 0.5}, None, False),
        ({"approx": 0.5}, float("nan"), False),
        ({"range": [0.2, 0.45]}, 0.2, True),
        ({"range": [0.2, 0.45]}, 0.46, False),
        ({"range": [None, 0]}, -1e9, True),
        ({"range": [0, None]}, -1e-9, False),
        ({"range": [0, 1]}, True, False),
    ],
)
def test_expectations(expectation: dict, measured: object, passes: bool) -> None:
    assert Expectation(path="x", **expectation).passes(measured) is passes


def test_expectations_write_what_they_expect() -> None:
    assert Expectation(path="x", equals="linear").expected() == "== linear"
    assert Expectation(path="x", approx=0.25, rel=0.1).expected() == "0.25 ± 0.025"
    assert Expectation(path="x", range=[None, 1]).expected() == "in [-inf, 1]"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "give exactly one of equals, approx, range"),
        ({"equals": 1, "range": [0, 2]}, "give exactly one of equals, approx, range"),
        ({"range": [0, 1], "rel": 0.1}, "rel and abs are tolerances of approx"),
        ({"approx": None}, "approx needs a number"),
        ({"range": [2, 1]}, "range needs"),
        ({"approx": 1, "rel": -0.1}, "greater than or equal to 0"),
        ({"approx": 1, "within": 2}, "Extra inputs are not permitted"),
        ({"approx": 1, "path": "runs[x]"}, "neither an index nor key=value"),
    ],
)
def test_a_malformed_expectation_is_refused(fields: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Expectation.model_validate({"path": "x", **fields})


def test_evaluate_measures_every_expectation() -> None:
    case = Case(
        name="train",
        spec={"kind": "train"},
        expect=[
            Expectation(path="optimizers[name=gd].runs[0].fit.verdict", equals="linear"),
            Expectation(path="optimizers[name=gd].rate.mean", range=[0.9, 1.0]),
            Expectation(path="optimizers[name=adam].rate.mean", approx=0.5),
        ],
    )
    passed, slow, missing = evaluate(case, RESULT)
    assert (passed.passed, passed.measured, passed.error) == (True, "linear", None)
    assert (slow.passed, slow.measured, slow.expected, slow.error) == (False, "0.83", "in [0.9, 1]", None)
    assert (missing.passed, missing.measured) == (False, "missing") and "name=adam" in missing.error

    failed = evaluate(case, None, "job abc failed: the kernel is zero")
    assert [(o.passed, o.error) for o in failed] == [(False, "job abc failed: the kernel is zero")] * 3


def test_a_suite_reads_spec_files_beside_it(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "body.json").write_text(json.dumps({"spec": {"kind": "kernel"}, "reuse": False}))
    (tmp_path / "specs" / "bare.yaml").write_text("kind: train\nwidth: 64\n")
    suite_file = tmp_path / "suite.yaml"
    suite_file.write_text(
        "name: lab\n"
        "cases:\n"
        "  - {name: a, spec: specs/body.json, expect: [{path: kind, equals: kernel}]}\n"
        "  - {name: b, spec: specs/bare.yaml, expect: [{path: width, range: [1, 100]}]}\n"
        "  - {name: c, spec: {kind: kernel, dtype: float32}, expect: [{path: dtype, equals: float32}]}\n"
    )
    suite = load_suite(suite_file)
    assert suite.name == "lab"
    assert [case.spec for case in suite.cases] == [
        {"kind": "kernel"},
        {"kind": "train", "width": 64},
        {"kind": "kernel", "dtype": "float32"},
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("cases: []\n", "at least 1 item"),
        ("cases:\n  - {name: a, spec: {}, expect: []}\n", "at least 1 item"),
        ("cases:\n  - {name: a, spec: missing.json, expect: [{path: n, equals: 1}]}\n", "missing.json"),
        (
            "cases: [{name: a, spec: {}, expect: [{path: n, equals: 1}]}, {name: a, spec: {}, expect: [{path: n, equals: 1}]}]\n",
            "case names must differ",
        ),
        ("cases: [\n", "not valid YAML"),
    ],
)
def test_a_bad_suite_file_says_what_is_wrong(tmp_path: Path, content: str, message: str) -> None:
    suite_file = tmp_path / "suite.yaml"
    suite_file.write_text(content)
    with pytest.raises(ValueError, match=message):
        load_suite(suite_file)


def test_the_junit_report_counts_failures_and_errors() -> None:
    case = Case(
        name="train",
        spec={},
        expect=[
            Expectation(path="kind", equals="train"),
            Expectation(path="optimizers[name=gd].rate.mean", range=[0.9, 1.0]),
            Expectation(path="spectrum.lambda_min", approx=0.1),
        ],
    )
    root = junit("lab", evaluate(case, RESULT), seconds=1.5).getroot()
    suite = root.find("testsuite")
    assert suite is not None
    assert {key: suite.get(key) for key in ("name", "tests", "failures", "errors", "time")} == {
        "name": "lab",
        "tests": "3",
        "failures": "1",
        "errors": "1",
        "time": "1.500",
    }
    passed, failed, errored = suite.findall("testcase")
    assert (passed.get("classname"), passed.get("name"), list(passed)) == ("train", "kind", [])
    failure = failed.find("failure")
    assert failure is not None and failure.get("message") == "expected in [0.9, 1], measured 0.83"
    error = errored.find("error")
    assert error is not None and "no field 'spectrum'" in (error.get("message") or "")
