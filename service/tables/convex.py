"""A convex result's tables: nonconvex runs over time against the optimum, how each ended, and
the recovered network."""

from typing import Any

from .table import Table, run_names

RUNS = ("run", "optimizer", "seed", "status", "steps", "seconds", "objective", "gap", "relative_gap")


def convex_tables(result: dict[str, Any]) -> dict[str, Table]:
    """`trajectories`: one row per run, seed and recorded step, with the objective and its gap to
    the optimum (empty where not finite or after the run ended); `runs`: one row per run and seed;
    `neurons`: one row per recovered neuron, its output weight and first-layer weights."""
    rows = result["comparison"]
    names = run_names([row["name"] for row in rows])
    optimum = result["optimum"]
    d = result["d"]
    return {
        "trajectories": Table.of(
            ("run", "optimizer", "seed", "step", "objective", "gap"),
            (
                (run, row["name"], outcome["seed"], step, value, None if value is None else value - optimum)
                for run, row in zip(names, rows, strict=True)
                for outcome in row["runs"]
                for step, value in zip(result["record_steps"], outcome["trajectory"], strict=False)
            ),
        ),
        "runs": Table.of(
            RUNS,
            (
                (
                    run,
                    row["name"],
                    outcome["seed"],
                    outcome["status"],
                    outcome["steps"],
                    outcome["seconds"],
                    outcome["objective"],
                    outcome["gap"],
                    outcome["relative_gap"],
                )
                for run, row in zip(names, rows, strict=True)
                for outcome in row["runs"]
            ),
        ),
        "neurons": Table.of(
            ("neuron", "output", *(f"weight_{k}" for k in range(d))),
            (
                (number, neuron["output"], *neuron["weights"])
                for number, neuron in enumerate(result["recovery"]["neurons"])
            ),
        ),
    }
