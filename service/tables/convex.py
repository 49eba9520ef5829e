"""A convex result's tables: nonconvex runs over time against the optimum, how each ended, the
recovered network, and for the SDP the spectra, ranks and entries of its PSD blocks."""

from typing import Any

from .table import Table, run_names

RUNS = (
    "run",
    "optimizer",
    "seed",
    "start",
    "noise",
    "status",
    "steps",
    "evaluations",
    "seconds",
    "objective",
    "gap",
    "relative_gap",
)


def convex_tables(result: dict[str, Any]) -> dict[str, Table]:
    """`trajectories`: one row per run, seed and recorded step, with the objective and its gap to
    the optimum (empty where not finite or after the run ended); `runs`: one row per run and seed,
    with its start and (L-BFGS) its evaluations (empty in results stored before they were
    reported); `neurons`: one row per recovered neuron, its output weight and first-layer weights;
    with an SDP report, `sdp_blocks`: one row per PSD block (Z, Z'), its numerical rank, the
    threshold behind it and the recovered neurons read off it; `sdp_eigenvalues`: one row per
    block and eigenvalue, largest first, and whether the rank counts it; and when the blocks were
    returned, `sdp_entries`: one row per block, row and column."""
    rows = result["comparison"]
    names = run_names([row["name"] for row in rows])
    optimum = result["optimum"]
    d = result["d"]
    found = {
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
                    outcome.get("start"),
                    outcome.get("noise"),
                    outcome["status"],
                    outcome["steps"],
                    outcome.get("evaluations"),
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
    sdp = result.get("sdp")
    return found if sdp is None else found | sdp_tables(sdp)


def sdp_tables(sdp: dict[str, Any]) -> dict[str, Table]:
    """The SDP report's tables (see `convex_tables`)."""
    blocks = sdp["matrices"]
    threshold = sdp["threshold"]
    found = {
        "sdp_blocks": Table.of(
            ("block", "rank", "threshold", "neurons"),
            ((block["name"], block["rank"], threshold, block["neurons"]) for block in blocks),
        ),
        "sdp_eigenvalues": Table.of(
            ("block", "position", "eigenvalue", "counted"),
            (
                (block["name"], position, value, value > threshold)
                for block in blocks
                for position, value in enumerate(block["eigenvalues"])
            ),
        ),
    }
    if all(block.get("matrix") is not None for block in blocks):
        found["sdp_entries"] = Table.of(
            ("block", "row", "column", "value"),
            (
                (block["name"], i, j, value)
                for block in blocks
                for i, entries in enumerate(block["matrix"])
                for j, value in enumerate(entries)
            ),
        )
    return found
