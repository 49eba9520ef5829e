"""Result tables and arrays as files: CSV, Parquet (Apache Arrow) and NumPy's npz."""

import csv
import io
from enum import StrEnum
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from service.tables import Table

ColumnType = Literal["bool", "int", "float", "str"]


class ResultFormat(StrEnum):
    json = "json"
    csv = "csv"
    parquet = "parquet"
    npz = "npz"

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self]


MEDIA_TYPES = {
    ResultFormat.json: "application/json",
    ResultFormat.csv: "text/csv; charset=utf-8",
    ResultFormat.parquet: "application/vnd.apache.parquet",
    ResultFormat.npz: "application/octet-stream",
}


def column_type(values: list[Any]) -> ColumnType:
    """The one type a column's present values share (missing ones aside): bool, int, float
    (ints and floats mixed) or, for anything else, str."""
    present = [value for value in values if value is not None]
    if all(isinstance(value, bool) for value in present) and present:
        return "bool"
    if any(isinstance(value, bool) or not isinstance(value, int | float) for value in present):
        return "str"
    if all(isinstance(value, int) for value in present) and len(present) == len(values):
        return "int"
    return "float"


def csv_bytes(table: Table) -> bytes:
    """The table as CSV under its header; a missing value is an empty field."""
    stream = io.StringIO()
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(table.header)
    writer.writerows(["" if value is None else value for value in row] for row in table.rows())
    return stream.getvalue().encode()


ARROW_TYPES = {"bool": pa.bool_(), "int": pa.int64(), "float": pa.float64(), "str": pa.string()}


def parquet_bytes(table: Table) -> bytes:
    """The table as a Parquet file: a column per variable, typed by `column_type`, nulls where
    values are missing."""
    arrow = pa.table(
        {
            name: pa.array(
                values if (kind := column_type(values)) != "str" else [strings(value) for value in values],
                type=ARROW_TYPES[kind],
            )
            for name, values in table.columns.items()
        }
    )
    sink = io.BytesIO()
    pq.write_table(arrow, sink)
    return sink.getvalue()


def strings(value: Any) -> str | None:
    return None if value is None else str(value)


def npz_bytes(arrays: dict[str, list[Any]]) -> bytes:
    """The arrays as one uncompressed npz, loadable without pickle: numbers as float64 (NaN where
    missing) or int64, booleans as bool (a missing one makes the column float), text as unicode."""
    sink = io.BytesIO()
    np.savez(sink, **{name: numpy_array(values) for name, values in arrays.items()})
    return sink.getvalue()


def numpy_array(values: list[Any]) -> np.ndarray:
    """A column (or a nested list of numbers: a matrix) as the NumPy array `npz_bytes` describes."""
    if values and isinstance(values[0], list):
        return np.asarray(values, dtype=np.float64)
    kind = column_type(values)
    if kind == "str":
        return np.asarray(["" if value is None else str(value) for value in values], dtype=np.str_)
    if kind == "bool" and None not in values:
        return np.asarray(values, dtype=np.bool_)
    if kind == "int":
        return np.asarray(values, dtype=np.int64)
    return np.asarray([np.nan if value is None else float(value) for value in values], dtype=np.float64)
