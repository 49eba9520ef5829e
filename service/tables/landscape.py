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
    "probability",
    "probability_lower",
    "probability_upper",
)
EIGENVALUES = ("point", "kind", "position", "eigenvalue")
MULTIPLETS = ("point", "kind", "value", "multiplicity", "spread")
KINDS = ("kind", "count", "trials", "estimate", "lower", "upper")
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
    Hessian index, starts that reached it, isotropy group, and the probability that a random start
    reaches it with its 95% interval, null in results from before); `eigenvalues`: one row per
    point and Hessian eigenvalue, ascending; `multiplets`: one row per point and distinct
    eigenvalue with its multiplicity; `kinds`: one row per kind of point and for the starts that
    did not converge, their count of the random starts with its 95% interval; `embeddings` (when
    asked): one row per wider point built from a census point. The last three only when the result
    has them."""
    census = result["census"]
    points = census["points"]
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
                    *_interval(point.get("probability")),
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
    if any(point.get("spectrum") for point in points):
        found["multiplets"] = Table.of(
            MULTIPLETS,
            (
                (number, point["kind"], group["value"], group["multiplicity"], group["spread"])
                for number, point in enumerate(points)
                for group in point.get("spectrum") or []
            ),
        )
    if census.get("kinds"):
        counted = {**census["kinds"], "did_not_converge": census.get("did_not_converge")}
        found["kinds"] = Table.of(
            KINDS,
            (
                (kind, frequency["count"], frequency["trials"], *_interval(frequency))
                for kind, frequency in counted.items()
                if frequency is not None
            ),
        )
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


def _interval(frequency: dict[str, Any] | None) -> tuple[float | None, float | None, float | None]:
    """(estimate, lower, upper) of a frequency; Nones when the result has none."""
    if frequency is None:
        return None, None, None
    return frequency["estimate"], frequency["lower"], frequency["upper"]
