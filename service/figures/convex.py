"""A convex result's figures: the nonconvex runs' objective in time against the certified
optimum, and the network recovered from the convex program."""

import math
from typing import Any

from service.tables.table import run_names

from .bands import spread
from .figure import Figure, Series, finite


def convex_figures(result: dict[str, Any]) -> list[Figure]:
    """`objective`: per optimizer, the objective at the recorded steps, mean over the runs
    inside their min-max band (log y), and the optimum of the convex program as a horizontal
    line (`optimum`, or `upper bound` when the patterns were sampled); `neurons`: per recovered
    neuron j, the norm of its first-layer weights |u_j| and its output weight alpha_j (markers;
    the ReLU program's neurons are balanced, |u_j| = |alpha_j|; the SDP's have |u_j| = 1)."""
    steps = result["record_steps"]
    rows = result["comparison"]
    runs = [
        spread(name, [(steps, outcome["trajectory"]) for outcome in row["runs"]])
        for name, row in zip(run_names([row["name"] for row in rows]), rows, strict=True)
    ]
    ends = [min(steps), max(steps)] if steps else []
    bound = Series(
        "optimum" if result["exact"] else "upper bound",
        ends,
        [finite(result["optimum"])] * len(ends),
        dash="dash",
    )
    neurons = result["recovery"]["neurons"]
    numbers = list(range(len(neurons)))
    return [
        Figure(
            "objective",
            "Nonconvex runs against the convex optimum",
            "step",
            "objective",
            [*runs, bound],
            y_log=True,
        ),
        Figure(
            "neurons",
            "Recovered neurons",
            "neuron j",
            "weight",
            [
                Series(
                    "|u_j|",
                    numbers,
                    [finite(math.hypot(*neuron["weights"])) for neuron in neurons],
                    mode="markers",
                ),
                Series("alpha_j", numbers, [finite(neuron["output"]) for neuron in neurons], mode="markers"),
            ],
        ),
    ]
