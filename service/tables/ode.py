"""An ode result's tables: the exact trajectories, the slowest modes, the discrete iterations
against the flow, and the finite-width gaps."""

from typing import Any

from .table import Table, run_names

TRAJECTORIES = ("dynamics", "t", "residual_norm", "loss", "integrated_norm")
MODES = ("dynamics", "mode", "eigenvalue", "t", "residual")
DISCRETE = ("dynamics", "method", "lr", "momentum", "steps", "time_per_step", "gap", "network_gap")
ITERATES = ("dynamics", "lr", "step", "t", "residual_norm")
WIDTHS = ("flow", "width", "replicates", "gap_mean", "gap_std", "evaluations")


def ode_tables(result: dict[str, Any]) -> dict[str, Table]:
    """Each dynamics named by `run_names` (`heavy_ball[1]` when two are). `trajectories`: one
    row per dynamics and grid time (the exact solution's |e(t)| and loss,
    the integrator's |e(t)| when there is one); `modes`: the residual along each recorded
    eigen-direction, per dynamics and time; `discrete`: one row per dynamics and step size (gap
    to the flow); `iterates`: one row per dynamics, step size and recorded step k (|e_k| at ODE
    time t = k time_per_step); `widths` (with a parameter-space study): one row per flow and
    width."""
    t = result["t"]
    dynamics = result["dynamics"]
    named = list(zip(run_names([flow["name"] for flow in dynamics]), dynamics, strict=True))
    found = {
        "trajectories": Table.of(
            TRAJECTORIES,
            (
                (name, time, norm, loss, integrated)
                for name, flow in named
                for time, norm, loss, integrated in zip(
                    t, flow["residual_norm"], flow["loss"], integrated_norm(flow), strict=True
                )
            ),
        ),
        "modes": Table.of(
            MODES,
            (
                (name, mode["index"], mode["eigenvalue"], time, value)
                for name, flow in named
                for mode in flow["modes"]
                for time, value in zip(t, mode["residual"], strict=True)
            ),
        ),
        "discrete": Table.of(
            DISCRETE,
            (
                (
                    name,
                    study["method"],
                    row["lr"],
                    row["momentum"],
                    row["steps"],
                    row["time_per_step"],
                    row["gap"],
                    row.get("network_gap"),
                )
                for name, flow in named
                if (study := flow["discrete"]) is not None
                for row in study["rows"]
            ),
        ),
        "iterates": Table.of(
            ITERATES,
            (
                (name, row["lr"], round(time / row["time_per_step"]), time, norm)
                for name, flow in named
                for row in (flow["discrete"] or {}).get("rows", [])
                for time, norm in zip(row.get("times") or [], row.get("residual_norm") or [], strict=True)
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


def integrated_norm(flow: dict[str, Any]) -> list[float | None]:
    """The integrator's |e(t)| on the grid, or None at every time (no integrator, or a result
    stored before it was kept)."""
    kept = (flow["integrated"] or {}).get("residual_norm")
    return kept if kept is not None else [None] * len(flow["residual_norm"])
