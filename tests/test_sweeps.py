"""Sweeps: a grid over a base spec fans out as child jobs on real workers, in parallel, survives a
killed worker, reuses finished children, cancels cleanly, and gathers a table with trends."""

import json
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient
from pydantic import ValidationError

from schemas import over_budget
from schemas.paths import assign, resolve
from schemas.sweep import CHILDREN_MAX, SweepSpec
from service.server.app import create_app
from service.server.formats import csv_bytes
from service.server.processes import stop
from service.server.settings import ServerSettings
from service.tables import table
from workers.compute.datasets import make_data
from workers.sweeps import kendall_tau

from .conftest import Stack, authorize, embedded_settings, start_worker, wait_for_workers
from .processes import descendants
from .results import real_result

KERNEL = {"kind": "kernel", "dataset": {"name": "sphere", "n": 128, "d": 6, "seed": 0}}
METRICS = [
    {"name": "distance", "path": "empirical.rows[0].relative_frobenius.mean"},
    {"name": "lambda_min", "path": "spectrum.lambda_min"},
]


def sweep(widths: list[int], seeds: list[int] | None = None, **fields: object) -> dict:
    axes = [{"path": "empirical", "values": [{"widths": [width]} for width in widths]}]
    if seeds is not None:
        axes.append({"path": "dataset.seed", "values": seeds})
    return {"kind": "sweep", "base": KERNEL, "axes": axes, "metrics": METRICS, **fields}


def test_grid_points_are_specs_with_the_axis_values_set() -> None:
    spec = SweepSpec.model_validate(sweep([64, 256], seeds=[1, 2, 3]))
    assert len(spec.points()) == 6
    children = spec.children
    assert [(child.empirical.widths[0], child.dataset.seed) for child in children[:3]] == [
        (64, 1),
        (64, 2),
        (64, 3),
    ]
    zipped = SweepSpec.model_validate(
        {
            "kind": "sweep",
            "base": KERNEL,
            "mode": "zip",
            "axes": [{"path": "dataset.n", "values": [64, 128]}, {"path": "dataset.d", "values": [4, 8]}],
        }
    )
    assert [(child.dataset.n, child.dataset.d) for child in zipped.children] == [(64, 4), (128, 8)]


def test_paths_set_list_items_and_matched_items() -> None:
    base = {"optimizers": [{"name": "gd", "lr": 1.0}, {"name": "heavy_ball"}]}
    assert assign(base, "optimizers[name=heavy_ball].momentum", 0.9)["optimizers"][1] == {
        "name": "heavy_ball",
        "momentum": 0.9,
    }
    assert assign(base, "optimizers[0]", {"name": "adam"})["optimizers"][0] == {"name": "adam"}
    assert base["optimizers"][0] == {"name": "gd", "lr": 1.0}, "the base is left alone"
    unnamed = {"xs": [{"v": 1}, {"name": None, "v": 2}]}
    assert resolve(unnamed, "xs[name=null].v") == 2
    assert assign(unnamed, "xs[name=null].v", 3)["xs"] == [{"v": 1}, {"name": None, "v": 3}]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"axes": [{"path": "dataset.n", "values": [64, 1]}]}, "grid point 1 (dataset.n=1)"),
        (
            {
                "mode": "zip",
                "axes": [{"path": "dataset.n", "values": [64]}, {"path": "dataset.d", "values": [4, 5]}],
            },
            "zip needs axes of equal length",
        ),
        (
            {"axes": [{"path": "dataset.seed", "values": list(range(CHILDREN_MAX + 1))}]},
            f"at most {CHILDREN_MAX}",
        ),
        ({"axes": [{"path": "dataset..n", "values": [1]}]}, "cannot read path"),
        ({"base": {**KERNEL, "kind": "sweep"}}, "cannot itself be a sweep"),
        (
            {"metrics": [{"name": "a", "path": "n"}, {"name": "a", "path": "d"}]},
            "two metrics have the same name",
        ),
    ],
)
def test_invalid_sweeps_say_why(change: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        SweepSpec.model_validate({**sweep([64]), **change})


def test_kendall_tau() -> None:
    assert kendall_tau([(1, 3), (2, 2), (3, 1)]) == -1.0
    assert kendall_tau([(1, 1), (2, 3), (3, 2), (4, 4)]) == pytest.approx(4 / 6)
    assert kendall_tau([(1, 1), (1, 2)]) is None


@dataclass
class Pair(Stack):
    """The stack with a second worker."""

    second: subprocess.Popen | None = None


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """The embedded stack with two workers; reconciler every second."""
    folder = tmp_path_factory.mktemp("sweeps")
    with embedded_settings(folder, reconcile_seconds=1, progress_interval=0.1) as settings:
        first = start_worker(settings, folder / "first.log")
        second = start_worker(settings, folder / "second.log")
        try:
            with TestClient(create_app(settings)) as client:
                authorize(client, settings)
                wait_for_workers(settings, count=2)
                store = client.app.state.store  # type: ignore[attr-defined]
                yield Pair(settings, client, store, first, folder / "first.log", second)
        finally:
            stop(first, grace=10)
            stop(second, grace=10)


def test_a_sweep_runs_its_children_in_parallel_and_tabulates_them(workers: Pair) -> None:
    # two workers, two slots: the submit sends two children at once, before it answers, and
    # each worker runs some (whether two short children overlap in time is up to the machine)
    parent = workers.submit(sweep([4096, 2**16], seeds=[1, 2]))
    assert parent["kind"] == "sweep" and len(parent["children"]) == 4
    sent = [row for row in workers.store.many(parent["children"]) if row.dispatched_at is not None]
    assert len(sent) >= 2, "the submit sent one child at a time"
    done = workers.wait(parent["id"], timeout=120)
    assert (done["status"], done["progress"]) == ("succeeded", 1.0), done
    children = [workers.client.get(f"/v1/jobs/{child}").json() for child in done["children"]]
    assert all(child["status"] == "succeeded" and child["parent_id"] == parent["id"] for child in children)
    logs = [log.read_text() for log in (workers.log, workers.log.parent / "second.log")]
    ran = [[child["id"] for child in children if f"run_job[{child['id']}] succeeded" in log] for log in logs]
    assert all(ran) and sorted(ran[0] + ran[1]) == sorted(done["children"]), ran  # each ran some, once

    table = workers.client.get(f"/v1/jobs/{parent['id']}/result").json()
    assert table["counts"] == {"succeeded": 4}
    assert [row["values"]["dataset.seed"] for row in table["rows"]] == [1, 2, 1, 2]
    for row, child in zip(table["rows"], children, strict=True):
        result = workers.client.get(f"/v1/jobs/{child['id']}/result").json()
        assert row["metrics"]["lambda_min"] == result["spectrum"]["lambda_min"]
        assert not row["cached"]
    narrow, wide = table["rows"][0]["metrics"]["distance"], table["rows"][2]["metrics"]["distance"]
    assert wide < narrow, "finite-width kernels approach H_inf as the width grows"


def test_a_resubmitted_sweep_recomputes_only_new_points(workers: Pair) -> None:
    first = workers.wait(workers.submit(sweep([128, 512]))["id"], timeout=120)
    again = workers.submit(sweep([128, 512]))
    assert again["status"] == "succeeded", "an identical sweep reuses every child and ends at once"
    assert again["children"] == first["children"]
    grown = workers.wait(workers.submit(sweep([128, 512, 2048]))["id"], timeout=120)
    rows = workers.client.get(f"/v1/jobs/{grown['id']}/result").json()["rows"]
    assert [row["cached"] for row in rows] == [True, True, False]
    assert grown["children"][:2] == first["children"], "the finished children are reused"


def test_trends_along_numeric_axes(workers: Pair) -> None:
    spec = {**sweep([512]), "axes": [{"path": "dataset.n", "values": [32, 64, 128]}]}
    done = workers.wait(workers.submit(spec)["id"], timeout=120)
    trends = workers.client.get(f"/v1/jobs/{done['id']}/result").json()["trends"]
    assert {(t["axis"], t["metric"]) for t in trends} == {
        ("dataset.n", "distance"),
        ("dataset.n", "lambda_min"),
    }
    smallest = next(t for t in trends if t["metric"] == "lambda_min")
    assert (smallest["tau"], smallest["direction"]) == (-1.0, "down"), (
        "more points on the sphere, smaller lambda_min"
    )


def test_cancelling_a_sweep_cancels_its_children(workers: Pair) -> None:
    # 2^20 neurons: seconds of work checking for a cancel all along, so the running children are
    # stopped mid-way even on a loaded machine (2^17 sometimes finished first under load)
    parent = workers.submit(sweep([2**20], seeds=[11, 12, 13, 14, 15]))
    workers.wait_running(parent["children"][0])
    response = workers.client.delete(f"/v1/jobs/{parent['id']}")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    for child in parent["children"]:
        assert workers.wait(child, timeout=60)["status"] == "cancelled"
    assert workers.client.get(f"/v1/jobs/{parent['id']}").json()["status"] == "cancelled"


def test_a_sweep_survives_a_killed_worker(workers: Pair) -> None:
    parent = workers.submit(sweep([2**16], seeds=[21, 22, 23]))
    workers.wait_running(parent["children"][0])
    for worker in (workers.worker, workers.second):
        for child in descendants(worker.pid):  # the pool processes: their running jobs die with them
            os.kill(child, signal.SIGKILL)
    done = workers.wait(parent["id"], timeout=180)
    assert done["status"] == "succeeded"
    children = [workers.client.get(f"/v1/jobs/{child}").json() for child in done["children"]]
    assert all(child["status"] == "succeeded" for child in children), children
    assert children[0]["attempts"] == 2, "the killed child was delivered again"


def test_over_budget_grid_points_are_named(workers: Pair) -> None:
    huge = sweep([64, 2**22])
    huge["base"] = {**KERNEL, "dataset": {"name": "sphere", "n": 4096, "d": 6}}
    response = workers.client.post("/v1/jobs", json={"spec": huge})
    assert response.status_code == 422
    detail = response.json()["detail"][0]
    assert "grid point 1" in detail["loc"] and "budget" in detail["msg"]


EXAMPLE = Path(__file__).parent.parent / "examples" / "sweep_generalization.json"
GENERALIZATION = json.loads(EXAMPLE.read_text())["spec"]


def test_the_generalization_example_fits_the_default_budgets() -> None:
    spec = SweepSpec.model_validate(GENERALIZATION)
    settings = ServerSettings()
    assert max(spec.axes[1].values) / min(spec.axes[1].values) >= 100, "widths span two orders of magnitude"
    for child in spec.children:
        assert over_budget(child.cost(), settings.max_flops, settings.max_memory_bytes) is None, child
    assert spec.cost().flops <= settings.max_sweep_flops


SEPARATION = json.loads((EXAMPLE.parent / "sweep_concept_separation.json").read_text())["spec"]


def test_the_separation_example_moves_the_split_not_the_concept() -> None:
    """The training-set size moves through test_fraction over one seeded pool of points: a
    `dataset.n` axis would draw another concept at each n (its weights come from the same
    generator, after the inputs). Every child of one concept labels the same 2048 points."""
    spec = SweepSpec.model_validate(SEPARATION)
    settings = ServerSettings()
    assert spec.cost().flops <= settings.max_sweep_flops
    assert all(
        over_budget(c.cost(), settings.max_flops, settings.max_memory_bytes) is None for c in spec.children
    )
    for layers in (2, 3):
        datasets = [c.dataset for c in spec.children if c.dataset.labels.layers == layers]
        assert len({(d.n, d.d, d.seed, d.labels) for d in datasets}) == 1
        assert {d.test_fraction for d in datasets} == {0.875, 0.75, 0.5}  # 256, 512, 1024 to train
        pools = []
        for test_fraction in (0.875, 0.5):
            dataset = datasets[0].model_copy(update={"test_fraction": test_fraction})
            data = make_data(dataset, torch.float64, torch.device("cpu"))
            pools.append(torch.cat([data.y, data.y_test]).sort().values)
        assert torch.equal(pools[0], pools[1]), "one concept, one pool, another split"


def test_the_generalization_study_at_a_reduced_size(workers: Pair) -> None:
    small = GENERALIZATION
    for path, value in [
        ("base.dataset.n", 96),
        ("base.steps", 40),
        ("axes[1].values", [8, 64]),
        ("baselines[0].spec.dataset.n", 96),
        ("baselines[1].spec.dataset.n", 96),
    ]:
        small = assign(small, path, value)
    done = workers.wait(workers.submit(small)["id"], timeout=240)
    assert done["status"] == "succeeded", done
    table = workers.client.get(f"/v1/jobs/{done['id']}/result").json()
    assert table["counts"] == {"succeeded": 6}
    grid, baselines = table["rows"][:4], table["rows"][4:]
    assert [(row["values"]["network.depth"], row["values"]["width"]) for row in grid] == [
        (2, 8),
        (2, 64),
        (3, 8),
        (3, 64),
    ]
    assert [row["baseline"] for row in baselines] == ["ntk regression, depth 2", "ntk regression, depth 3"]
    for row in table["rows"]:
        assert row["metrics"]["test_mse"] > 0
    assert all(row["metrics"]["train_loss"] > 0 for row in grid)
    assert all(row["metrics"]["train_loss"] is None for row in baselines), "kernel rows have no training loss"
    child = workers.client.get(f"/v1/jobs/{grid[0]['job']}/result").json()
    runs = child["optimizers"][0]["runs"]
    assert grid[0]["metrics"]["test_mse"] == pytest.approx(sum(run["test_mse"] for run in runs) / len(runs))
    assert {(t["axis"], t["metric"]) for t in table["trends"]} == {
        (axis, metric) for axis in ("network.depth", "width") for metric in ("test_mse", "train_loss")
    }


def test_a_sweep_table_as_csv() -> None:
    result = real_result("sweep")
    name, points = table(result, None)
    assert name == "points"
    lines = csv_bytes(points).decode().splitlines()
    assert len(lines) == 1 + len(result["rows"])
    assert [lines[0], lines[1], lines[-1]] == [
        "baseline,network.depth,width,job,status,cached,test_mse,losses",
        f',2,8,2{8:031d},succeeded,False,0.0625,"[1.0, 0.5]"',
        f"ntk regression,,,{'b' * 32},failed,True,,",
    ]


def test_a_sweep_is_not_reused_when_a_point_failed_and_a_finished_one_cannot_be_cancelled(
    workers: Pair,
) -> None:
    failing = {
        "kind": "sweep",
        "base": KERNEL,
        "axes": [
            {
                "path": "dataset",
                "values": [
                    {"name": "inline", "X": [[1e-200, 0.0], [0.0, 1e-200]], "y": [1.0, -1.0]},
                    KERNEL["dataset"],
                ],
            }
        ],
    }
    first = workers.wait(workers.submit(failing)["id"], timeout=120)
    table = workers.client.get(f"/v1/jobs/{first['id']}/result").json()
    assert first["status"] == "succeeded" and table["counts"] == {"failed": 1, "succeeded": 1}
    assert "the kernel is zero" in table["rows"][0]["error"]
    again = workers.submit(failing)
    assert again["id"] != first["id"] and again["children"][1] == first["children"][1]
    assert again["children"][0] != first["children"][0], "the failed point runs again"
    workers.wait(again["id"], timeout=120)
    assert workers.client.delete(f"/v1/jobs/{again['id']}").status_code == 409


def test_huge_grids_are_refused_without_being_built() -> None:
    axes = [{"path": f"dataset.labels.k{i}", "values": list(range(256))} for i in range(4)]
    with pytest.raises(ValidationError, match="4294967296 points"):
        SweepSpec.model_validate({"kind": "sweep", "base": KERNEL, "axes": axes})
