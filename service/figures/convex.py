"""A convex result's figures: the nonconvex runs' objective in time against the certified
optimum, the network recovered from the convex program, and the SDP's block spectra."""

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
    the ReLU program's neurons are balanced, |u_j| = |alpha_j|; the SDP's have |u_j| = 1); with an
    SDP report, `sdp-spectrum`: |eigenvalue| of each PSD block by position, largest first (log y),
    and the rank threshold as a horizontal line."""
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
    sdp = result.get("sdp")
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
        *([] if sdp is None else [spectrum_figure(sdp)]),
    ]


def spectrum_figure(sdp: dict[str, Any]) -> Figure:
    """The blocks' |eigenvalues| (markers) over the rank threshold (dashed): the rank of a block is
    the number of its markers above the line."""
    blocks = sdp["matrices"]
    size = max(len(block["eigenvalues"]) for block in blocks)
    return Figure(
        "sdp-spectrum",
        "Eigenvalues of the SDP's blocks",
        "position",
        "|eigenvalue|",
        [
            *(
                Series(
                    block["name"],
                    list(range(len(block["eigenvalues"]))),
                    [finite(abs(value)) or None for value in block["eigenvalues"]],  # 0: off a log axis
                    mode="markers",
                )
                for block in blocks
            ),
            Series("rank threshold", [0, size - 1], [finite(sdp["threshold"])] * 2, dash="dash"),
        ],
        y_log=True,
    )
