"""A train result's figures: each recorded trajectory per optimizer, the replicates' mean inside
their band; the loss with the fitted regimes and the rate theory predicts."""

from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

from service.tables.table import run_names

from .bands import spread
from .figure import Figure, Series
from .lines import exponential, power_law


@dataclass(frozen=True)
class Trajectory:
    """How one recorded metric is drawn against the step."""

    name: str
    title: str
    y_label: str
    y_log: bool


TRAJECTORIES = {
    "train_loss": Trajectory("loss", "Training loss", "loss", y_log=True),
    "weight_change": Trajectory(
        "weight-change", "Weight movement", "|theta_k - theta_0| / |theta_0|", y_log=False
    ),
    "pattern_flips": Trajectory(
        "pattern-flips", "Activation pattern flips", "share of flipped patterns", False
    ),
    "test_loss": Trajectory("test-loss", "Test loss", "test loss", y_log=True),
}
"""Per record key: its figure, drawn when some run recorded it."""
THEORY_KERNEL = "analytic"
"""Whose predicted rate is drawn over the loss: the one of H_inf."""


def train_figures(result: dict[str, Any]) -> list[Figure]:
    """One figure per recorded trajectory of `TRAJECTORIES` (`loss`, `weight-change`,
    `pattern-flips`, `test-loss` when there is a test split): per run, the mean over the
    replicates at each step they all recorded, inside their min-max band. Over the loss: the
    pieces fitted to the first replicate (`<run> linear fit`: c rate^k; `<run> power fit`:
    c k^-p, c by least squares on the piece's points) and, when it converges (0 < rate < 1), the
    per-step rate predicted from H_inf from the mean initial loss, `L_0 rate^k` (`<run> predicted`)."""
    optimizers = result["optimizers"]
    names = run_names([optimizer["name"] for optimizer in optimizers])
    found = []
    for key, drawn in TRAJECTORIES.items():
        series = []
        for run, optimizer in zip(names, optimizers, strict=True):
            runs = [outcome for outcome in optimizer["runs"] if key in outcome["record"]]
            if not runs:
                continue
            mean = replicate_mean(
                run, [(outcome["record"]["step"], outcome["record"][key]) for outcome in runs]
            )
            series.append(mean)
            if key == "train_loss":
                series += theory(run, optimizer, mean)
        if series:
            found.append(Figure(drawn.name, drawn.title, "step", drawn.y_label, series, y_log=drawn.y_log))
    return found


def replicate_mean(run: str, curves: list[tuple[list[Any], list[Any]]]) -> Series:
    """`spread` of the replicates' records, the mean left out at a step that not all of them
    recorded: a run that reached the tolerance between two record steps ends with a record of
    its own there, and a mean of the others alone would jump (the band still shows it)."""
    drawn = spread(run, curves)
    counts = Counter(step for steps, _ in curves for step in steps)
    y = [value if counts[step] == len(curves) else None for step, value in zip(drawn.x, drawn.y, strict=True)]
    return replace(drawn, y=y)


def theory(run: str, optimizer: dict[str, Any], mean: Series) -> list[Series]:
    """The lines drawn over a run's mean loss: its first replicate's fitted pieces, and its
    predicted rate from the mean's first point over the steps the mean has a value."""
    first = optimizer["runs"][0]
    record = first["record"]
    lines = [fitted(run, piece, record["step"], record["train_loss"]) for piece in first["fit"]["pieces"]]
    rate = next((p["rate"] for p in optimizer["predicted"] if p["kernel"] == THEORY_KERNEL), None)
    points = [(x, y) for x, y in zip(mean.x, mean.y, strict=True) if x is not None and y is not None]
    if rate is not None and 0 < rate < 1 and points:
        (start, initial), steps = points[0], [x for x, _ in points]
        predicted = [initial * rate ** (step - start) for step in steps]
        lines.append(Series(f"{run} predicted", steps, predicted, dash="dot", group=run))
    return [line for line in lines if line is not None]


def fitted(run: str, piece: dict[str, Any], steps: list[float], losses: list[float | None]) -> Series | None:
    """A fitted piece over its own recorded steps: `c rate^k` (linear) or `c k^-p` (power)."""
    inside = [
        (step, loss)
        for step, loss in zip(steps, losses, strict=True)
        if piece["start_step"] <= step <= piece["stop_step"] and (piece["model"] == "linear" or step > 0)
    ]
    x, y = [step for step, _ in inside], [loss for _, loss in inside]
    name = f"{run} {piece['model']} fit"
    if piece["model"] == "linear":
        return None if piece["rate"] is None else exponential(name, x, y, piece["rate"], run)
    return None if piece["exponent"] is None else power_law(name, x, y, -piece["exponent"], run)
