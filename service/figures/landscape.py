"""A landscape result's figures: where the starts went (the census), and the Hessian spectrum of
each critical point found."""

from typing import Any

from .figure import Figure, Series, finites


def landscape_figures(result: dict[str, Any]) -> list[Figure]:
    """`census`: per kind of critical point (global minimum, spurious minimum, saddle,
    degenerate), each distinct point's loss against the number of starts that reached it
    (markers); `frequency` (with random starts): each point's share of the starts with its 95%
    Clopper-Pearson interval as error bars, labelled `<position in the census>: <isotropy>`, a
    series per kind, and the starts that did not converge; `hessian`: per point, its Hessian
    eigenvalues in ascending order (rescaling directions included), named `<position in the
    census> <kind>`."""
    points = result["census"]["points"]
    kinds = dict.fromkeys(point["kind"] for point in points)
    census = [
        Series(
            kind,
            [point["starts"] for point in points if point["kind"] == kind],
            finites([point["loss"] for point in points if point["kind"] == kind]),
            mode="markers",
        )
        for kind in kinds
    ]
    spectra = [
        Series(
            f"{number} {point['kind']}",
            list(range(len(point["eigenvalues"]))),
            finites(point["eigenvalues"]),
            mode="lines+markers",
        )
        for number, point in enumerate(points)
    ]
    return [
        Figure("census", "Critical points found", "starts that reached it", "loss", census),
        *frequency_figure(result["census"]),
        Figure("hessian", "Hessian spectra", "position (ascending)", "eigenvalue", spectra),
    ]


def frequency_figure(census: dict[str, Any]) -> list[Figure]:
    """The `frequency` figure, or none when no random start ran (no point has a probability)."""
    classes: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for number, point in enumerate(census["points"]):
        if point.get("probability"):
            label = f"{number}: {point['symmetry']['isotropy']}"
            classes.setdefault(point["kind"], []).append((label, point["probability"]))
    if not classes:
        return []
    lost = census.get("did_not_converge")
    if lost and lost["count"]:
        classes["did not converge"] = [("did not converge", lost)]
    series = [
        Series(
            kind,
            [label for label, _ in found],
            finites([share["estimate"] for _, share in found]),
            low=finites([share["lower"] for _, share in found]),
            high=finites([share["upper"] for _, share in found]),
            mode="markers",
        )
        for kind, found in classes.items()
    ]
    title = "Share of random starts (95% interval)"
    return [Figure("frequency", title, "critical point", "share of starts", series, y_log=True)]
