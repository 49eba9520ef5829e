"""An ode result's tables: the exact trajectories, the slowest modes, the discrete iterations
against the flow, and the finite-width gaps."""

from typing import Any

from .table import Table

TRAJECTORIES = ("dynamics", "t", "residual_norm", "loss")
MODES = ("dynamics", "mode", "eigenvalue", "t", "residual")
DISCRETE = ("dynamics", "method", "lr", "momentum", "steps", "time_per_step", "gap", "network_gap")
WIDTHS = ("flow", "width", "replicates", "gap_mean", "gap_std", "evaluations")


def ode_tables(result: dict[str, Any]) -> dict[str, Table]:
    """`trajectories`: one row per dynamics and grid time (the exact solution's |e(t)| and loss);
    `modes`: the residual along each recorded eigen-direction, per dynamics and time;
    `discrete`: one row per dynamics and step size (gap to the flow); `widths` (with a
    parameter-space study): one row per flow and width."""
    t = result["t"]
    dynamics = result["dynamics"]
    found = {
        "trajectories": Table.of(
            TRAJECTORIES,
            (
                (flow["name"], time, norm, loss)
                for flow in dynamics
                for time, norm, loss in zip(t, flow["residual_norm"], flow["loss"], strict=True)
            ),
        ),
        "modes": Table.of(
            MODES,
            (
                (flow["name"], mode["index"], mode["eigenvalue"], time, value)
                for flow in dynamics
                for mode in flow["modes"]
                for time, value in zip(t, mode["residual"], strict=True)
            ),
        ),
        "discrete": Table.of(
            DISCRETE,
            (
                (
                    flow["name"],
                    study["method"],
                    row["lr"],
                    row["momentum"],
                    row["steps"],
                    row["time_per_step"],
                    row["gap"],
                    row.get("network_gap"),
                )
                for flow in dynamics
                if (study := flow["discrete"]) is not None
                for row in study["rows"]
            ),
        ),
    }
    if result.get("parameter_space") is not None:
        found["widths"] = Table.of(
            WIDTHS,
            (
                (
                    study["dynamics"],
                    row["width"],
                    row["replicates"],
                    row["gap_mean"],
                    row["gap_std"],
                    row["evaluations"],
                )
                for study in result["parameter_space"]
                for row in study["rows"]
            ),
        )
    return found
