"""Train jobs on a small sphere dataset, as the service runs them, for the training tests."""

from schemas import TrainResult, TrainSpec
from workers.compute import run_experiment

SPHERE = {"name": "sphere", "n": 32, "d": 8, "seed": 0}


def train(**fields: object) -> TrainResult:
    spec = {"kind": "train", "dataset": SPHERE, "network": {"name": "two_layer"}, "width": 8192, **fields}
    result = run_experiment(TrainSpec.model_validate(spec))
    assert isinstance(result, TrainResult)
    return result
