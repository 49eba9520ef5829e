"""A landscape result's tables: the census of critical points, their Hessian spectra, and the
symmetry-induced points built from them."""

from typing import Any

from .table import Table

POINTS = (
    "point",
    "kind",
    "loss",
    "gradient_norm",
    "index",
    "nullity",
    "starts",
    "isotropy",
    "supplied",
)
EIGENVALUES = ("point", "kind", "position", "eigenvalue")
EMBEDDINGS = (
    "point",
    "construction",
    "neuron",
    "ratio",
    "kind",
    "loss",
    "loss_change",
    "gradient_norm",
    "critical",
    "index",
    "nullity",
)


def landscape_tables(result: dict[str, Any]) -> dict[str, Table]:
    """`points`: one row per distinct critical point (position in the census, its kind, loss,
    Hessian index, starts that reached it, isotropy group); `eigenvalues`: one row per point and
    Hessian eigenvalue, ascending; `embeddings` (when asked): one row per wider point built from
    a census point."""
    points = result["census"]["points"]
    found = {
        "points": Table.of(
            POINTS,
            (
                (
                    number,
                    point["kind"],
                    point["loss"],
                    point["gradient_norm"],
                    point["index"],
                    point["nullity"],
                    point["starts"],
                    point["symmetry"]["isotropy"],
                    " ".join(str(index) for index in point["supplied"]),
                )
                for number, point in enumerate(points)
            ),
        ),
        "eigenvalues": Table.of(
            EIGENVALUES,
            (
                (number, point["kind"], position, value)
                for number, point in enumerate(points)
                for position, value in enumerate(point["eigenvalues"])
            ),
        ),
    }
    if result.get("embedding") is not None:
        found["embeddings"] = Table.of(
            EMBEDDINGS,
            (
                (
                    base["point"],
                    built["construction"],
                    built["neuron"],
                    built["ratio"],
                    built["kind"],
                    built["loss"],
                    built["loss_change"],
                    built["gradient_norm"],
                    built["critical"],
                    built["index"],
                    built["nullity"],
                )
                for base in result["embedding"]["bases"]
                for built in base["points"]
            ),
        )
    return found
