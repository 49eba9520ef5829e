"""A notebook session with ntkdyn: submit a training run, read its trajectories as a pandas
DataFrame, check the measured linear rates against the service's fit, and save a figure.

    pip install 'ntkdyn[notebook,plot]'
    NTKDYN_URL=http://127.0.0.1:8000 python examples/notebook.py

Each block is a notebook cell; the tests run this file against a live stack."""

import os

import numpy as np

from service.client import Client

SPEC = {
    "kind": "train",
    "dataset": {"name": "sphere", "n": 16, "d": 8, "seed": 0, "labels": {"rule": "random_sign"}},
    "network": {"name": "two_layer", "activation": "relu", "trained": "first"},
    "width": 1024,
    "optimizers": [{"name": "gd"}, {"name": "heavy_ball"}],
    "replicates": 2,
    "steps": 400,
    "record_points": 48,
}

with Client(os.environ.get("NTKDYN_URL", "http://127.0.0.1:8000")) as client:
    job = client.submit(SPEC)
    view = job.wait(timeout=600)
    assert view.status.value == "succeeded", view.error
    frame = job.to_frame()  # trajectories: a row per optimizer, replicate and recorded step
    runs = job.to_frame("runs")  # a row per optimizer and replicate: its end and fitted rate
    arrays = job.arrays()  # the same tables as NumPy arrays, `TABLE.COLUMN`

# %% the loss of each optimizer, geometric mean over replicates, at every recorded step
loss = frame.pivot_table(
    index="step", columns="optimizer", values="train_loss", aggfunc=lambda v: np.exp(np.log(v).mean())
)
print(loss.tail())

# %% the per-step loss factor, refitted here on the last half of each run, beside the service's
refitted = {}
for (optimizer, replicate), run in frame.groupby(["optimizer", "replicate"]):
    tail = run[run["step"] >= run["step"].max() / 2].dropna(subset=["train_loss"])
    slope = np.polyfit(tail["step"], np.log(tail["train_loss"]), 1)[0]
    refitted[(optimizer, replicate)] = float(np.exp(slope))
runs["refitted"] = [refitted[(o, r)] for o, r in zip(runs["optimizer"], runs["replicate"], strict=True)]
print(runs[["optimizer", "replicate", "status", "verdict", "rate", "refitted"]])

# %% save a figure of the loss curves
if os.environ.get("NOTEBOOK_FIGURE"):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes = loss.plot(logy=True, title="train loss (geometric mean over replicates)")
    axes.set_ylabel("1/2 |f - y|^2")
    plt.savefig(os.environ["NOTEBOOK_FIGURE"])
