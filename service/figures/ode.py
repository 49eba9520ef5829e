"""An ode result's figures: the exact loss of each dynamics in time, its slowest modes, the gap of
the discrete methods to the flow against the step size, and of finite networks against the width."""

from typing import Any

from service.tables.table import run_names

from .figure import Figure, Series, finites
from .lines import power_law


def ode_figures(result: dict[str, Any]) -> list[Figure]:
    """Each dynamics named as in the tables (`heavy_ball[1]` when two are). `trajectories`: the
    residual norm |e(t)| per dynamics (log y): the exact solution, the
    integrator's and each discrete run's at its recorded steps (when the result holds them);
    `loss`: the exact solution's loss against t per dynamics (log y); `modes`: |u_i . e(t)|
    along each recorded eigen-direction (log y); `discrete-gap` (when a dynamics has a discrete
    study): gap to the flow against the step size, log-log, with the fitted order's line
    `c lr^order` (and the finite network's gap and order when trained beside); `widths` (with a
    parameter-space study): the finite networks' gap against the width m, log-log, mean inside
    mean +- std over the replicates, with the fitted `c m^width_exponent`."""
    t = result["t"]
    dynamics = result["dynamics"]
    names = run_names([flow["name"] for flow in dynamics])
    found = [
        Figure(
            "trajectories",
            "Exact, integrated and discrete trajectories",
            "time t",
            "|e(t)|",
            [
                line
                for name, flow in zip(names, dynamics, strict=True)
                for line in trajectories(t, name, flow)
            ],
            y_log=True,
        ),
        Figure(
            "loss",
            "Loss of the exact flow",
            "time t",
            "loss",
            [Series(name, t, finites(flow["loss"])) for name, flow in zip(names, dynamics, strict=True)],
            y_log=True,
        ),
        Figure(
            "modes",
            "Residual along eigen-directions",
            "time t",
            "|u_i . e(t)|",
            [
                Series(
                    f"{name} mode {mode['index']}",
                    t,
                    finites([abs(value) for value in mode["residual"]]),
                )
                for name, flow in zip(names, dynamics, strict=True)
                for mode in flow["modes"]
            ],
            y_log=True,
        ),
    ]
    gaps = [
        line
        for name, flow in zip(names, dynamics, strict=True)
        if flow["discrete"] is not None
        for line in discrete(name, flow)
    ]
    if gaps:
        found.append(
            Figure(
                "discrete-gap",
                "Discrete methods against the flow",
                "step size lr",
                "max gap / |e(0)|",
                gaps,
                x_log=True,
                y_log=True,
            )
        )
    if result.get("parameter_space") is not None:
        found.append(widths(result["parameter_space"]))
    return found


def trajectories(t: list[float], name: str, flow: dict[str, Any]) -> list[Series]:
    """A dynamics' residual norm in time: exact (a line), integrated (dashed, in its colour), and
    each discrete step size's iterates at ODE time k time_per_step (markers, a colour each)."""
    lines = [Series(name, t, finites(flow["residual_norm"]), group=name)]
    integrated = flow["integrated"] or {}
    if integrated.get("residual_norm") is not None:
        lines.append(
            Series(f"{name} integrated", t, finites(integrated["residual_norm"]), dash="dash", group=name)
        )
    for row in (flow["discrete"] or {}).get("rows", []):
        if row.get("residual_norm") is not None:
            label = f"{name} discrete, lr {row['lr']:.3g}"
            lines.append(Series(label, row["times"], finites(row["residual_norm"]), mode="markers"))
    return lines


def discrete(name: str, flow: dict[str, Any]) -> list[Series]:
    """A dynamics' gaps per step size and the line of each fitted order."""
    study = flow["discrete"]
    lr = [row["lr"] for row in study["rows"]]
    gap = finites([row["gap"] for row in study["rows"]])
    lines = [
        Series(name, lr, gap, mode="lines+markers"),
        power_law(f"{name} order {study['order']:.2f}", lr, gap, study["order"], name),
    ]
    if study.get("network_order") is not None:
        network = finites([row.get("network_gap") for row in study["rows"]])
        lines += [
            Series(f"{name} network", lr, network, mode="lines+markers"),
            power_law(
                f"{name} network order {study['network_order']:.2f}",
                lr,
                network,
                study["network_order"],
                f"{name} network",
            ),
        ]
    return [line for line in lines if line is not None]


def widths(studies: list[dict[str, Any]]) -> Figure:
    """Each parameter-space flow's gap against the width, and its fitted power of m."""
    series = []
    for study in studies:
        rows = study["rows"]
        m = [row["width"] for row in rows]
        mean = finites([row["gap_mean"] for row in rows])
        series.append(
            Series(
                study["dynamics"],
                m,
                mean,
                low=finites([row["gap_mean"] - row["gap_std"] for row in rows]),
                high=finites([row["gap_mean"] + row["gap_std"] for row in rows]),
                mode="lines+markers",
            )
        )
        fit = power_law(
            f"{study['dynamics']} fitted m^{study['width_exponent']:.2f}",
            m,
            mean,
            study["width_exponent"],
            study["dynamics"],
        )
        series += [] if fit is None else [fit]
    return Figure(
        "widths",
        "Finite networks against the flow on H_inf",
        "width m",
        "max gap / |e(0)|",
        series,
        x_log=True,
        y_log=True,
    )
