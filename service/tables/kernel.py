"""A kernel result's tables: its spectrum with the label energy per eigen-direction, and the
finite-width study; and its Gram matrix as an n x n array."""

import base64
import sys
from array import array
from typing import Any

from .table import Table

SPECTRUM = ("position", "eigenvalue", "label_energy", "cumulative_energy")
WIDTHS = ("width", "replicates", "statistic", "mean", "std", "residual")
WIDTH_STATISTICS = ("relative_frobenius", "relative_operator", "lambda_min")


def kernel_tables(result: dict[str, Any]) -> dict[str, Table]:
    """`spectrum`: one row per eigenvalue, largest first (position 0; with an incomplete spectrum
    the top k, then the bottom k); `widths` (with an empirical study): one row per width and
    statistic of H_m against H_inf, mean and standard deviation over the replicates, and the
    worst relative residual of a matrix-free comparison (null when it was dense)."""
    values = result["spectrum"]["eigenvalues"]
    spectrum = Table.of(
        SPECTRUM,
        zip(range(len(values)), values, result["label_energy"], result["cumulative_energy"], strict=True),
    )
    found = {"spectrum": spectrum}
    if result.get("empirical") is not None:
        found["widths"] = Table.of(
            WIDTHS,
            (
                (
                    row["width"],
                    row["replicates"],
                    statistic,
                    row[statistic]["mean"],
                    row[statistic]["std"],
                    row.get("residual"),
                )
                for row in result["empirical"]["rows"]
                for statistic in WIDTH_STATISTICS
            ),
        )
    return found


def kernel_arrays(result: dict[str, Any]) -> dict[str, list[Any]]:
    """`matrix`: the Gram matrix, n x n, when the job was asked for it."""
    encoded = result.get("matrix")
    return {} if encoded is None else {"matrix": decoded_matrix(encoded)}


def decoded_matrix(encoded: dict[str, Any]) -> list[list[float]]:
    """The symmetric n x n matrix from the base64 of its upper triangle, row by row, as
    little-endian float64 (`schemas.results.EncodedMatrix`)."""
    n = encoded["n"]
    upper = array("d", base64.b64decode(encoded["data"]))
    if sys.byteorder == "big":
        upper.byteswap()
    if len(upper) != n * (n + 1) // 2:
        raise ValueError(f"an encoded {n} x {n} matrix holds {len(upper)} numbers, not {n * (n + 1) // 2}")
    rows = [[0.0] * n for _ in range(n)]
    at = 0
    for i in range(n):
        for j in range(i, n):
            rows[i][j] = rows[j][i] = upper[at]
            at += 1
    return rows
