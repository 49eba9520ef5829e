"""Initial weights given in a spec as tensors, and the checksum that names a net's weights.

The checksum (schemas: `initial_checksum`) lets a user tell which weights a run started from,
seeded or given, and compute it for their own arrays with numpy:

    digest = hashlib.sha256()
    for name in sorted(params):                      # names as strings: W1, W10, W2, ..., a
        digest.update(np.ascontiguousarray(params[name], dtype="<f8").tobytes())
    digest.hexdigest()
"""

import hashlib

import torch

from schemas.weights import InitialWeights
from workers.compute.networks import F64, Params


def given_params(initial: InitialWeights, dtype: torch.dtype, device: torch.device) -> Params:
    """The given weights as float64 tensors, then cast and moved, as seeded ones are drawn."""
    return {
        name: torch.tensor(values, dtype=F64).to(device=device, dtype=dtype)
        for name, values in initial.params.items()
    }


def weights_checksum(params: Params) -> str:
    """sha256 of the parameters in sorted name order, each as its values in float64, C order,
    little-endian (a float32 net: its float32 values, exactly widened). One host copy."""
    digest = hashlib.sha256()
    for name in sorted(params):
        values = params[name].detach().to(device="cpu", dtype=F64).contiguous().numpy()
        digest.update(values.astype("<f8", copy=False).tobytes())
    return digest.hexdigest()
