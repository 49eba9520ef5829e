"""A kernel result's figures: the spectrum of H_inf, where the labels' energy lies along it, and
how fast finite-width kernels approach it."""

from typing import Any

from .figure import Figure, Series, finites
from .lines import power_law

WIDTH_DISTANCES = {
    "relative_frobenius": "|H_m - H_inf|_F / |H_inf|_F",
    "relative_operator": "|H_m - H_inf|_2 / |H_inf|_2",
}
THEORY_EXPONENT = -0.5
"""|H_m - H_inf| ~ m^-1/2: the fluctuation of an average over m random neurons (Jacot et al. 2018,
Arora et al. 2019)."""


def kernel_figures(result: dict[str, Any]) -> list[Figure]:
    """`spectrum`: the eigenvalues, largest first (log y); `label-energy`: the share of |y|^2 on
    each eigen-direction and its running sum; `widths` (with an empirical study): the distance of
    H_m to H_inf against the width m (log-log), mean and band mean +- std over the replicates,
    with the fitted power of the result (`width_exponent`) and the theory's c m^-1/2, each through
    the mean relative Frobenius distances by least squares in log-log."""
    values = result["spectrum"]["eigenvalues"]
    positions = list(range(len(values)))
    found = [
        Figure(
            "spectrum",
            "Spectrum of the kernel",
            "position (largest first)",
            "eigenvalue",
            [Series("eigenvalue", positions, finites(values), mode="lines+markers")],
            y_log=True,
        ),
        Figure(
            "label-energy",
            "Label energy by eigen-direction",
            "position (largest first)",
            "share of |y|^2",
            [
                Series("per direction", positions, finites(result["label_energy"]), mode="markers"),
                Series("cumulative", positions, finites(result["cumulative_energy"])),
            ],
        ),
    ]
    if result.get("empirical") is not None:
        found.append(widths(result["empirical"]))
    return found


def widths(study: dict[str, Any]) -> Figure:
    """The finite-width study: one banded series per distance, and the fitted lines."""
    rows = study["rows"]
    m = [row["width"] for row in rows]
    series = [
        Series(
            label,
            m,
            finites([row[statistic]["mean"] for row in rows]),
            low=finites([row[statistic]["mean"] - row[statistic]["std"] for row in rows]),
            high=finites([row[statistic]["mean"] + row[statistic]["std"] for row in rows]),
            mode="lines+markers",
        )
        for statistic, label in WIDTH_DISTANCES.items()
    ]
    frobenius = series[0].y
    exponent = study["width_exponent"]
    fits = [power_law("c m^-1/2", m, frobenius, THEORY_EXPONENT)]
    title = "Finite-width kernels against H_inf"
    if exponent is not None:
        fits.append(power_law("fitted c m^p", m, frobenius, exponent))
        title += f" (fitted p = {exponent:.3f}, theory -1/2)"
    return Figure(
        "widths",
        title,
        "width m",
        "relative distance",
        series + [fit for fit in fits if fit is not None],
        x_log=True,
        y_log=True,
    )
