"""A landscape result's figures: where the starts went (the census), and the Hessian spectrum of
each critical point found."""

from typing import Any

from .figure import Figure, Series, finites


def landscape_figures(result: dict[str, Any]) -> list[Figure]:
    """`census`: per kind of critical point (global minimum, spurious minimum, saddle,
    degenerate), each distinct point's loss against the number of starts that reached it
    (markers); `hessian`: per point, its Hessian eigenvalues in ascending order (rescaling
    directions included), named `<position in the census> <kind>`."""
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
        Figure("hessian", "Hessian spectra", "position (ascending)", "eigenvalue", spectra),
    ]
