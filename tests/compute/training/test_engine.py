"""The training engine (workers.compute.training.engine and .stacked): runs, replicates, batching.

A researcher trains replicates of a net and expects: the weight change to count the trained layer
only; a run to stop at the first step whose loss reaches the tolerance, whatever the record grid,
as a plain PyTorch loop finds it; replicates stacked into one batched run to give the numbers they give one after another, for
every optimizer and network; a seed to be one network in every dtype; and replicates stacked
automatically on GPUs and for small CPU jobs only. CPU, float64 unless a test says otherwise.
"""

import itertools
import math

import pytest
import torch

from schemas import TrainSpec
from schemas.networks import FullyConnected, TwoLayerNet
from schemas.results import STEP_LOSSES
from workers.compute.datasets import make_data
from workers.compute.kernels.analytic import analytic_kernel
from workers.compute.networks import init_params
from workers.compute.training import engine
from workers.compute.training.engine import Problem, initial_params, record_steps
from workers.compute.training.stacked import seed_groups

from .helpers import SPHERE, train


def test_weight_change_counts_the_trained_layer_only() -> None:
    result_spec = {"network": {"name": "two_layer", "kappa": 0.01}, "width": 256, "steps": 50}
    problem_spec = TrainSpec.model_validate({"kind": "train", "dataset": SPHERE, **result_spec})
    data = make_data(problem_spec.dataset, torch.float64, torch.device("cpu"))
    H = analytic_kernel(problem_spec.network, data.X)
    _, vectors = torch.linalg.eigh(H)
    problem = Problem(
        problem_spec.network, 256, data.X, data.y, None, None, 1.0, vectors[:, -1], vectors[:, 0], True, False
    )
    [run] = engine.train(
        problem,
        "gd",
        {"lr": 0.5},
        engine.start(problem, [0]),
        0.0,
        60,
        record_steps(50, 16),
        lambda _s, _l: None,
    )
    W, W0 = run.final["W"], run.initial["W"]
    assert run.record["weight_change"][-1] == pytest.approx(float((W - W0).norm() / W0.norm()), rel=1e-12)


GRIDS = (512, 256, 16)  # record points


def plain_gd_losses(lr: float, steps: int) -> list[float]:
    """GD written by hand on the two-layer ReLU net f(x) = m^-1/2 sum_r a_r relu(w_r . x) (Du et
    al. 2019) from the trainer's seed-0 initialisation: an nn.Parameter, loss.backward() and an
    in-place update; the loss 1/2 sum_i (f(x_i) - y_i)^2 at steps 0..steps."""
    data = make_data(
        TrainSpec.model_validate({"dataset": SPHERE}).dataset, torch.float64, torch.device("cpu")
    )
    start = initial_params(TwoLayerNet(), 512, data.X, 0)
    W, a = torch.nn.Parameter(start["W"].clone()), start["a"]
    losses = []
    for _ in range(steps + 1):
        loss = 0.5 * ((torch.relu(data.X @ W.T) @ a / math.sqrt(512) - data.y) ** 2).sum()
        losses.append(float(loss.detach()))
        W.grad = None
        loss.backward()
        with torch.no_grad():
            W -= lr * W.grad
    return losses


def test_a_run_stops_at_the_first_step_below_the_tolerance_whatever_the_record_grid() -> None:
    """The tolerance sits between the plain loop's losses at steps k - 1 and k, k on none of the
    grids: every grid must report k steps, end its record at step k with that step's loss, and
    stop there (checked on the device at every step, read back only at records and blocks)."""
    lr, steps = 0.1, 600
    losses = plain_gd_losses(lr, steps)
    assert all(later < earlier for earlier, later in itertools.pairwise(losses))
    grids = [set(record_steps(steps, points)) for points in GRIDS]
    k = next(k for k in range(300, steps) if not any(k in grid for grid in grids))
    tolerance = math.sqrt(losses[k - 1] * losses[k])
    fields = {"width": 512, "steps": steps, "tolerance": tolerance, "replicates": 2}
    for optimizer in ({"name": "gd", "lr": lr}, {"name": "nesterov", "lr": lr, "momentum": 0.5}):
        runs = [train(optimizers=[optimizer], record_points=points, **fields) for points in GRIDS]
        for replicate in range(2):
            ends = [result.optimizers[0].runs[replicate] for result in runs]
            assert {run.status for run in ends} == {"converged"}
            assert len({run.steps for run in ends}) == 1, [run.steps for run in ends]
            for run in ends:
                assert run.record["step"][-1] == run.steps and run.final_loss <= tolerance
                assert run.record["train_loss"][-2] > tolerance
                assert run.final_loss == pytest.approx(ends[0].final_loss, rel=1e-12)
                assert len(run.record["step"]) <= len(record_steps(steps, GRIDS[0])) + 1
        if optimizer["name"] == "gd":
            first = runs[0].optimizers[0].runs[0]
            assert first.steps == k and first.final_loss == pytest.approx(losses[k], rel=1e-10)


def test_mini_batch_sgd_checks_the_tolerance_once_per_pass_whatever_the_record_grid() -> None:
    """SGD's step sees a batch only, so the full-batch loss is checked every ceil(n / b) steps
    (after the first STEP_LOSSES): the run converges at such a step, the same on every grid,
    with its loss at or below the tolerance there."""
    n, batch = SPHERE["n"], 8
    interval = -(-n // batch)
    fields = {"width": 512, "steps": 3000, "tolerance": 1e-3, "replicates": 2}
    optimizer = {"name": "sgd", "lr": 0.5, "batch_size": batch}
    runs = [train(optimizers=[optimizer], record_points=points, **fields) for points in GRIDS]
    for replicate in range(2):
        ends = [result.optimizers[0].runs[replicate] for result in runs]
        assert {run.status for run in ends} == {"converged"}
        assert len({run.steps for run in ends}) == 1, [run.steps for run in ends]
        assert ends[0].steps >= STEP_LOSSES and ends[0].steps % interval == 0
        for run in ends:
            assert run.record["step"][-1] == run.steps and run.final_loss <= fields["tolerance"]
            assert run.final_loss == pytest.approx(ends[0].final_loss, rel=1e-12)


@pytest.mark.parametrize(
    ("network", "optimizer"),
    [
        ({"name": "two_layer"}, {"name": "gd"}),
        ({"name": "two_layer", "trained": "both"}, {"name": "heavy_ball"}),
        ({"name": "two_layer"}, {"name": "nesterov", "momentum": "schedule"}),
        ({"name": "two_layer"}, {"name": "sgd", "batch_size": 8}),
        ({"name": "two_layer", "activation": "tanh"}, {"name": "adam", "lr": 0.01}),
        ({"name": "two_layer"}, {"name": "ggn", "batch_size": 16}),
        ({"name": "fully_connected", "depth": 3}, {"name": "heavy_ball"}),
    ],
)
def test_batched_replicates_give_the_sequential_numbers(network: dict, optimizer: dict) -> None:
    fields = {
        "network": network,
        "width": 256,
        "optimizers": [optimizer],
        "replicates": 3,
        "steps": 60,
        "record_points": 16,
        "tolerance": 0.0,
        "ntk_drift": True,
    }
    batched = train(batching="batched", **fields)
    sequential = train(batching="sequential", **fields)
    assert batched.batched and not sequential.batched
    for one, other in zip(batched.optimizers[0].runs, sequential.optimizers[0].runs, strict=True):
        assert (one.seed, one.status, one.steps) == (other.seed, other.status, other.steps)
        assert one.record.keys() == other.record.keys()
        for name, values in one.record.items():
            assert values == pytest.approx(other.record[name], rel=1e-9, abs=1e-12), name
    seeds = [run.record["train_loss"][-1] for run in batched.optimizers[0].runs]
    assert len(set(seeds)) == 3  # the replicates are different runs


def test_initialisation_is_drawn_in_float64_whatever_the_dtype() -> None:
    """A seed is one network in every dtype (and on every device): drawn in float64 on the CPU,
    then cast."""
    for network in (TwoLayerNet(), FullyConnected(depth=3)):
        wide = init_params(network, 5, 64, torch.Generator().manual_seed(2), torch.float64)
        narrow = init_params(network, 5, 64, torch.Generator().manual_seed(2), torch.float32)
        for name, value in narrow.items():
            assert value.dtype == torch.float32
            assert torch.equal(value, wide[name].float()), name


def test_auto_batching_stacks_on_gpus_and_small_cpu_jobs_only() -> None:
    def groups(width: int, device: str, batching: str = "auto") -> list[list[int]]:
        spec = TrainSpec.model_validate(
            {
                "kind": "train",
                "dataset": SPHERE,
                "width": width,
                "replicates": 4,
                "seed": 7,
                "batching": batching,
            }
        )
        return seed_groups(spec, torch.device(device))

    assert groups(1024, "cpu") == [[7, 8, 9, 10]]  # 4 x 32 x 1024 stacked activations: small
    assert groups(65536, "cpu") == [[7], [8], [9], [10]]  # 2^23 > CPU_STACK_MAX
    assert groups(65536, "cuda") == [[7, 8, 9, 10]]
    assert groups(1024, "cuda", "sequential") == [[7], [8], [9], [10]]
    assert groups(65536, "cpu", "batched") == [[7, 8, 9, 10]]
