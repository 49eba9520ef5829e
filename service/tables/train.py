"""A train result's tables: trajectories, runs, and the rates theory predicts."""

from typing import Any

from .table import Table, run_names

RUNS = (
    "run",
    "optimizer",
    "replicate",
    "seed",
    "status",
    "steps",
    "seconds",
    "final_loss",
    "test_mse",
    "verdict",
    "confidence",
    "rate",
    "exponent",
    "change_step",
    "order_verdict",
    "order",
    "order_se",
    "order_steps",
)
PREDICTED = ("run", "optimizer", "kernel", "formula", "predicted_rate", "measured_rate", "ratio")


def train_tables(result: dict[str, Any]) -> dict[str, Table]:
    """`trajectories`: one row per run, replicate and recorded step, a column per recorded metric
    (train_loss, weight_change, pattern_flips, ...; empty where not finite or not recorded);
    `runs`: one row per run and replicate with its end, its fitted rate and its order of
    convergence p (+- its standard error, from `order_steps` consecutive steps; empty in results
    stored before orders were measured); `predicted`: one row per run and kernel whose spectrum
    predicts a rate, beside the measured mean rate."""
    optimizers = result["optimizers"]
    names = run_names([optimizer["name"] for optimizer in optimizers])
    return {
        "trajectories": trajectories(optimizers, names),
        "runs": Table.of(
            RUNS,
            (
                (
                    run,
                    optimizer["name"],
                    replicate,
                    outcome["seed"],
                    outcome["status"],
                    outcome["steps"],
                    outcome["seconds"],
                    outcome["final_loss"],
                    outcome["test_mse"],
                    outcome["fit"]["verdict"],
                    outcome["fit"]["confidence"],
                    outcome["fit"]["rate"],
                    outcome["fit"]["exponent"],
                    outcome["fit"]["change_step"],
                    *order_cells(outcome.get("order")),
                )
                for run, optimizer in zip(names, optimizers, strict=True)
                for replicate, outcome in enumerate(optimizer["runs"])
            ),
        ),
        "predicted": Table.of(
            PREDICTED,
            (
                (
                    run,
                    optimizer["name"],
                    prediction["kernel"],
                    prediction["formula"],
                    prediction["rate"],
                    None if optimizer["rate"] is None else optimizer["rate"]["mean"],
                    optimizer["ratio"].get(prediction["kernel"]),
                )
                for run, optimizer in zip(names, optimizers, strict=True)
                for prediction in optimizer["predicted"]
            ),
        ),
    }


def order_cells(order: dict[str, Any] | None) -> tuple[Any, ...]:
    """verdict, p, its standard error and the steps used; empty cells without an order."""
    if order is None:
        return (None, None, None, None)
    return (order["verdict"], order["order"], order["order_se"], order["steps_used"])


def trajectories(optimizers: list[dict[str, Any]], names: list[str]) -> Table:
    """The recorded trajectories, tidy: run, optimizer, replicate, seed, step, then one column per
    metric any run recorded, in the order first seen."""
    metrics: dict[str, None] = {}
    for optimizer in optimizers:
        for outcome in optimizer["runs"]:
            metrics.update(dict.fromkeys(name for name in outcome["record"] if name != "step"))
    header = ("run", "optimizer", "replicate", "seed", "step", *metrics)
    rows = []
    for run, optimizer in zip(names, optimizers, strict=True):
        for replicate, outcome in enumerate(optimizer["runs"]):
            record = outcome["record"]
            for at, step in enumerate(record["step"]):
                values = (record[name][at] if name in record else None for name in metrics)
                rows.append((run, optimizer["name"], replicate, outcome["seed"], int(step), *values))
    return Table.of(header, rows)
