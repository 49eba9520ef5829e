"""Initial weights given in the spec (`initial`), and the checksum every run reports.

A researcher who brings the weights of another tool expects: the run from the seed's own
weights, passed inline, to be the seeded run number for number, with the same checksum; a plain
PyTorch loop from any weights to give the run's losses; every replicate to start from the given
weights while the seeds still draw SGD's batches; the checksum to be what numpy computes from
their arrays by the documented recipe; and an ode job to start from them as from its seed.
"""

import hashlib
import math
from typing import Any

import numpy as np
import pytest
import torch

from schemas import OdeResult, OdeSpec, TrainResult, TrainSpec
from schemas.networks import FullyConnected, TwoLayerNet
from schemas.weights import parameter_shapes
from workers.compute import run_experiment
from workers.compute.datasets import make_data
from workers.compute.networks import init_params
from workers.compute.training.engine import initial_params
from workers.compute.weights import weights_checksum

F64, CPU = torch.float64, torch.device("cpu")
DATA = {"name": "sphere", "n": 16, "d": 4, "seed": 0}


def numpy_checksum(params: dict[str, Any]) -> str:
    """The recipe of the `initial_checksum` description, written with numpy alone."""
    digest = hashlib.sha256()
    for name in sorted(params):
        digest.update(np.ascontiguousarray(params[name], dtype="<f8").tobytes())
    return digest.hexdigest()


def seeded_lists(width: int, seed: int) -> dict[str, list]:
    """The seed's initial weights of the two-layer net on DATA, as the lists a request carries."""
    X = make_data(TrainSpec.model_validate({"dataset": DATA}).dataset, F64, CPU).X
    return {name: value.tolist() for name, value in initial_params(TwoLayerNet(), width, X, seed).items()}


def train(spec: dict[str, Any]) -> TrainResult:
    result = run_experiment(TrainSpec.model_validate(spec))
    assert isinstance(result, TrainResult)
    return result


def test_given_weights_from_the_seed_reproduce_the_seeded_run() -> None:
    spec = {
        "kind": "train",
        "dataset": DATA,
        "width": 64,
        "replicates": 2,
        "seed": 3,
        "optimizers": [{"name": "gd"}, {"name": "sgd", "batch_size": 4}],
        "steps": 60,
    }
    weights = seeded_lists(64, 3)
    seeded, given = train(spec), train({**spec, "initial": {"params": weights}})
    for ours, theirs in zip(seeded.optimizers, given.optimizers, strict=True):
        assert ours.hyperparameters == theirs.hyperparameters  # auto lr from the same kernel at init
        first, again = ours.runs[0], theirs.runs[0]
        assert (first.seed, first.steps, first.status) == (again.seed, again.steps, again.status)
        for name, values in first.record.items():
            assert again.record[name] == pytest.approx(values, rel=1e-12, abs=1e-300), name
        assert first.initial_checksum == again.initial_checksum == numpy_checksum(weights)
        # every replicate starts from the given weights; its seed still draws SGD's batches
        second = theirs.runs[1]
        assert second.seed == 4 and second.initial_checksum == again.initial_checksum
        assert second.record["train_loss"][0] == again.record["train_loss"][0]
        assert ours.runs[1].initial_checksum != first.initial_checksum  # seed 4's own weights
        if ours.name == "gd":
            assert second.final_loss == again.final_loss
        else:
            assert second.final_loss != again.final_loss  # other batches


def two_layer_forward(params: dict[str, torch.Tensor], X: torch.Tensor) -> torch.Tensor:
    """f(x) = m^-1/2 sum_r a_r relu(w_r . x) (Du et al. 2019)."""
    return torch.relu(X @ params["W"].T) @ params["a"] / math.sqrt(params["a"].shape[0])


def deep_forward(params: dict[str, torch.Tensor], X: torch.Tensor) -> torch.Tensor:
    """h1 = W1 x, h2 = sqrt(2/m) W2 relu(h1), f = m^-1/2 W3 relu(h2)."""
    m = params["W1"].shape[0]
    h = X @ params["W1"].T
    h = torch.relu(h) @ params["W2"].T * math.sqrt(2.0 / m)
    return (torch.relu(h) @ params["W3"].T / math.sqrt(m))[:, 0]


def plain_gd(
    forward: Any, start: dict[str, torch.Tensor], trained: list[str], X: torch.Tensor, y: torch.Tensor
) -> list[float]:
    """GD by hand: nn.Parameters, loss.backward() and in-place updates at lr 0.1 on the loss
    1/2 sum_i (f(x_i) - y_i)^2; the loss at steps 0..40."""
    params = {
        name: torch.nn.Parameter(value.clone()) if name in trained else value for name, value in start.items()
    }
    losses = []
    for _ in range(41):
        loss = 0.5 * ((forward(params, X) - y) ** 2).sum()
        losses.append(float(loss.detach()))
        for name in trained:
            params[name].grad = None
        loss.backward()
        with torch.no_grad():
            for name in trained:
                params[name] -= 0.1 * params[name].grad
    return losses


def tangent_kernel_by_autograd(
    forward: Any, start: dict[str, torch.Tensor], trained: list[str], X: torch.Tensor
) -> torch.Tensor:
    """J J^T, J the (n, p) Jacobian of the outputs in the trained parameters."""

    def outputs(*values: torch.Tensor) -> torch.Tensor:
        return forward({**start, **dict(zip(trained, values, strict=True))}, X)

    jacobians = torch.autograd.functional.jacobian(outputs, tuple(start[name] for name in trained))
    J = torch.cat([jacobian.reshape(X.shape[0], -1) for jacobian in jacobians], dim=1)
    return J @ J.T


@pytest.mark.parametrize(
    ("network", "forward", "trained"),
    [
        ({"name": "two_layer", "trained": "first"}, two_layer_forward, ["W"]),  # `a` frozen as given
        ({"name": "two_layer", "trained": "both"}, two_layer_forward, ["W", "a"]),
        ({"name": "fully_connected", "depth": 3}, deep_forward, ["W1", "W2", "W3"]),
    ],
    ids=["two_layer-first", "two_layer-both", "fully_connected-3"],
)
def test_a_plain_pytorch_loop_from_arbitrary_weights_gives_the_runs_losses(
    network: dict[str, Any], forward: Any, trained: list[str]
) -> None:
    """Weights no initialisation of ours draws (uniform first layer, Gaussian output weights
    that are not +-1): the run's recorded losses are the hand-written loop's at those steps, and
    its kernel at init (the one behind `auto`) is J J^T at the given weights."""
    spec = {
        "kind": "train",
        "dataset": DATA,
        "network": network,
        "width": 32,
        "optimizers": [{"name": "gd", "lr": 0.1}],
        "steps": 40,
        "record_points": 512,
    }
    model = TrainSpec.model_validate(spec)
    generator = torch.Generator().manual_seed(11)
    start = {
        name: 2 * torch.rand(shape, generator=generator, dtype=F64) - 1
        if name in ("W", "W1")
        else 0.7 * torch.randn(shape, generator=generator, dtype=F64)
        for name, shape in parameter_shapes(model.network, 4, 32).items()
    }
    lists = {name: value.tolist() for name, value in start.items()}
    result = train({**spec, "initial": {"params": lists}})
    [run] = result.optimizers[0].runs
    data = make_data(model.dataset, F64, CPU)
    at_init = torch.linalg.eigvalsh(tangent_kernel_by_autograd(forward, start, trained, data.X))
    [empirical] = [kernel for kernel in result.kernels if kernel.kernel == "empirical_init"]
    assert (empirical.lambda_min, empirical.lambda_max) == pytest.approx(
        (float(at_init[0]), float(at_init[-1])), rel=1e-10
    )
    expected = plain_gd(forward, start, trained, data.X, data.y)
    steps = [int(step) for step in run.record["step"]]
    assert steps == list(range(41))
    assert run.record["train_loss"] == pytest.approx(expected, rel=1e-10)
    assert expected[-1] < 0.6 * expected[0]  # it trains
    assert run.initial_checksum == numpy_checksum(lists)


def test_the_checksum_is_the_documented_numpy_recipe() -> None:
    """sha256 over sorted names (W1, W10, W2: as strings) of C-order little-endian float64
    bytes, whatever the tensor's layout; a float32 tensor counts its float32 values widened."""
    generator = torch.Generator().manual_seed(0)
    params = {name: torch.randn(3, 5, generator=generator, dtype=F64) for name in ("W2", "W10", "W1")}
    params["a"] = torch.randn(5, 3, generator=generator, dtype=F64).T  # not contiguous
    arrays = {name: value.numpy() for name, value in params.items()}
    assert weights_checksum(params) == numpy_checksum(arrays)
    in_order = b"".join(
        np.ascontiguousarray(arrays[name]).astype("<f8").tobytes() for name in ("W1", "W10", "W2", "a")
    )
    assert weights_checksum(params) == hashlib.sha256(in_order).hexdigest()
    narrow = {name: value.float() for name, value in params.items()}
    widened = {name: value.astype(np.float32).astype(np.float64) for name, value in arrays.items()}
    assert weights_checksum(narrow) == numpy_checksum(widened) != numpy_checksum(arrays)


@pytest.mark.parametrize(
    "network",
    [TwoLayerNet(), FullyConnected(depth=2), FullyConnected(depth=5), FullyConnected(depth=3, b_std=0.1)],
    ids=["two_layer", "fully_connected-2", "fully_connected-5", "fully_connected-biases"],
)
def test_parameter_shapes_are_what_the_initialisation_draws(network: TwoLayerNet | FullyConnected) -> None:
    drawn = init_params(network, 7, 6, torch.Generator().manual_seed(0), F64)
    assert [(name, tuple(value.shape)) for name, value in drawn.items()] == list(
        parameter_shapes(network, 7, 6).items()
    )


def test_an_ode_job_from_given_weights_equals_the_seeded_one() -> None:
    """The empirical_init kernel, e(0) and the network trained beside the discrete runs, all
    from seed 2's weights passed inline (in a spec of seed 7): seed 2's result and checksums."""
    spec = {
        "kind": "ode",
        "dataset": DATA,
        "kernel": "empirical_init",
        "width": 64,
        "seed": 2,
        "dynamics": [{"name": "gd_flow"}, {"name": "heavy_ball"}],
        "grid": {"t_max": 5.0, "points": 16},
        "discrete": {"lrs": [0.4, 0.1], "network_width": 64},
    }
    weights = seeded_lists(64, 2)
    seeded = run_experiment(OdeSpec.model_validate(spec))
    # another seed beside them: the given weights, not the seed, make the net
    given = run_experiment(OdeSpec.model_validate({**spec, "seed": 7, "initial": {"params": weights}}))
    assert isinstance(seeded, OdeResult) and isinstance(given, OdeResult)
    assert seeded.kernel.startswith("empirical NTK at init (width 64, seed 2)")
    assert given.kernel.startswith("empirical NTK at init (width 64, given initial weights)")
    assert (given.lambda_min, given.lambda_max, given.initial_loss) == pytest.approx(
        (seeded.lambda_min, seeded.lambda_max, seeded.initial_loss), rel=1e-12
    )
    assert seeded.initial_checksum == given.initial_checksum == numpy_checksum(weights)
    for ours, theirs in zip(seeded.dynamics, given.dynamics, strict=True):
        assert theirs.loss == pytest.approx(ours.loss, rel=1e-12)
        assert ours.discrete is not None and theirs.discrete is not None
        assert ours.discrete.network_checksum == theirs.discrete.network_checksum == given.initial_checksum
        gaps = [row.network_gap for row in theirs.discrete.rows]
        assert gaps == pytest.approx([row.network_gap for row in ours.discrete.rows], rel=1e-12)
