"""A result as tidy tables and arrays, on real documents of every kind: each table holds exactly
the document's numbers, one row per observation, and survives CSV, Parquet and npz unchanged."""

import csv
import io
import math

import numpy as np
import pyarrow.parquet as pq
import pytest

from service.server.formats import column_type, csv_bytes, npz_bytes, parquet_bytes
from service.tables import Table, arrays, table, tables

from .results import KINDS, real_result

FIRST = {
    "kernel": "spectrum",
    "train": "trajectories",
    "ode": "trajectories",
    "landscape": "points",
    "convex": "trajectories",
    "sweep": "points",
}


def test_each_kind_has_its_tables_with_the_default_first() -> None:
    for kind in KINDS:
        found = tables(real_result(kind))
        assert next(iter(found)) == FIRST[kind]
        assert table(real_result(kind), None)[0] == FIRST[kind]
        for name, one in found.items():
            assert len(one) > 0, (kind, name)
            assert all(len(values) == len(one) for values in one.columns.values())


def test_train_trajectories_are_the_records_one_row_per_run_replicate_and_step() -> None:
    result = real_result("train")
    trajectories = tables(result)["trajectories"]
    rows = [dict(zip(trajectories.header, row, strict=True)) for row in trajectories.rows()]
    assert {row["run"] for row in rows} == {"gd[0]", "heavy_ball", "gd[2]"}
    for index, optimizer in enumerate(result["optimizers"]):
        for replicate, run in enumerate(optimizer["runs"]):
            mine = [
                row for row in rows if (row["optimizer"], row["replicate"]) == (optimizer["name"], replicate)
            ]
            mine = [row for row in mine if row["run"] in (optimizer["name"], f"{optimizer['name']}[{index}]")]
            assert [row["step"] for row in mine] == [int(step) for step in run["record"]["step"]]
            for metric, values in run["record"].items():
                if metric != "step":
                    assert [row[metric] for row in mine] == values
    assert len(rows) == sum(len(run["record"]["step"]) for o in result["optimizers"] for run in o["runs"])
    runs = tables(result)["runs"]
    assert len(runs) == 6 and set(runs.columns["status"]) <= {"converged", "diverged", "budget", "steps"}


def test_kernel_matrix_is_the_gram_matrix_whose_spectrum_the_result_gives() -> None:
    result = real_result("kernel")
    matrix = np.asarray(arrays(result)["matrix"])
    n = result["n"]
    assert matrix.shape == (n, n) and np.array_equal(matrix, matrix.T)
    eigenvalues = np.sort(np.linalg.eigvalsh(matrix))[::-1]
    assert eigenvalues == pytest.approx(result["spectrum"]["eigenvalues"], rel=1e-10, abs=1e-12)
    assert float(np.trace(matrix)) == pytest.approx(result["spectrum"]["trace"], rel=1e-12)
    widths = tables(result)["widths"]
    assert len(widths) == 3 * len(result["empirical"]["rows"])
    assert widths.columns["residual"] == [None] * len(widths)  # stored kernels: dense comparisons


def test_ode_convex_and_landscape_tables_hold_every_number_once() -> None:
    ode = real_result("ode")
    found = tables(ode)
    assert len(found["trajectories"]) == len(ode["t"]) * len(ode["dynamics"])
    assert found["trajectories"].columns["loss"] == [v for flow in ode["dynamics"] for v in flow["loss"]]
    assert len(found["discrete"]) == sum(len(flow["discrete"]["rows"]) for flow in ode["dynamics"])
    integrated = [v for flow in ode["dynamics"] for v in flow["integrated"]["residual_norm"]]
    assert found["trajectories"].columns["integrated_norm"] == integrated
    rows = [row for flow in ode["dynamics"] for row in flow["discrete"]["rows"]]
    assert found["iterates"].columns["residual_norm"] == [v for row in rows for v in row["residual_norm"]]
    assert found["iterates"].columns["t"] == [t for row in rows for t in row["times"]]
    assert found["iterates"].columns["step"][: len(rows[0]["times"])] == [
        round(t / rows[0]["time_per_step"]) for t in rows[0]["times"]
    ]
    assert len(found["modes"]) == sum(len(flow["modes"]) for flow in ode["dynamics"]) * len(ode["t"])
    assert "widths" in found

    convex = real_result("convex")
    trajectories = tables(convex)["trajectories"]
    for objective, gap in zip(trajectories.columns["objective"], trajectories.columns["gap"], strict=True):
        assert (gap is None) == (objective is None)
        assert gap is None or gap == pytest.approx(objective - convex["optimum"], abs=1e-15)
    neurons = tables(convex)["neurons"]
    assert neurons.header == ["neuron", "output", "weight_0", "weight_1"]
    assert len(neurons) == len(convex["recovery"]["neurons"])

    landscape = real_result("landscape")
    points = landscape["census"]["points"]
    found = tables(landscape)
    assert found["points"].columns["kind"] == [point["kind"] for point in points]
    assert len(found["eigenvalues"]) == sum(len(point["eigenvalues"]) for point in points)


def test_an_unknown_table_names_the_tables_there_are() -> None:
    with pytest.raises(ValueError, match="a kernel result has no table 'runs'; its tables: spectrum, widths"):
        table(real_result("kernel"), "runs")
    with pytest.raises(ValueError, match="a result of kind 'plot' has no tables"):
        tables({"kind": "plot"})


def test_column_types() -> None:
    assert column_type([1, 2, None]) == "float"
    assert column_type([1, 2]) == "int"
    assert column_type([1, 2.5]) == "float"
    assert column_type([True, None]) == "bool"
    assert column_type([True, 1]) == "str"
    assert column_type(["a", 1.0]) == "str"


@pytest.mark.parametrize("kind", KINDS)
def test_every_table_survives_csv_and_parquet(kind: str) -> None:
    for name, one in tables(real_result(kind)).items():
        rows = list(csv.reader(io.StringIO(csv_bytes(one).decode())))
        assert rows[0] == one.header and len(rows) == len(one) + 1
        back = pq.read_table(io.BytesIO(parquet_bytes(one))).to_pydict()
        assert list(back) == one.header, (kind, name)
        for column, values in one.columns.items():
            if column_type(values) == "str":
                assert back[column] == [None if v is None else str(v) for v in values]
            else:
                assert back[column] == values, (kind, name, column)


def test_npz_holds_every_column_and_loads_without_pickle() -> None:
    result = real_result("train")
    loaded = np.load(io.BytesIO(npz_bytes(arrays(result))), allow_pickle=False)
    assert set(loaded.files) == {
        f"{name}.{column}" for name, one in tables(result).items() for column in one.header
    }
    loss = loaded["trajectories.train_loss"]
    assert loss.dtype == np.float64
    assert [None if math.isnan(v) else v for v in loss.tolist()] == tables(result)["trajectories"].columns[
        "train_loss"
    ]
    assert loaded["trajectories.run"].dtype.kind == "U" and loaded["trajectories.step"].dtype == np.int64


def test_a_row_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match="a row of 1 values under 2 columns"):
        Table.of(["a", "b"], [[1]])
