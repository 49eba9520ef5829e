"""Experiment specs: one model per `kind`, joined in a discriminated union."""

from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from schemas.budget import Cost
from schemas.common import SpecModel, seed_field
from schemas.datasets import DatasetSpec, SphereDataset
from schemas.networks import TwoLayerReLU

EMPIRICAL_WIDTH_MAX = 2**22
EMPIRICAL_CHUNK = 4096
"""Neurons drawn per block when the empirical kernel is accumulated (bounds its memory)."""

Device = Literal["cpu", "cuda"]

KERNEL_EXAMPLE = {
    "kind": "kernel",
    "dataset": {"name": "sphere", "n": 256, "d": 10, "seed": 0, "labels": {"rule": "relu_teacher", "k": 4}},
    "network": {"name": "two_layer_relu"},
    "empirical_width": 0,
}


class KernelSpec(SpecModel):
    """The infinite-width NTK of a dataset under a network, its spectrum and label alignment.

    With `empirical_width = m > 0` the finite-width kernel of m random neurons is computed too
    and compared with the analytic one (their gap shrinks like m^-1/2).
    """

    kind: Literal["kernel"] = "kernel"
    dataset: DatasetSpec = Field(default_factory=SphereDataset)
    network: TwoLayerReLU = Field(default_factory=TwoLayerReLU)
    empirical_width: int = Field(
        0, ge=0, le=EMPIRICAL_WIDTH_MAX, description="m > 0: also the empirical kernel of m neurons"
    )
    empirical_seed: int = seed_field("seed of the empirical kernel's random first layer")
    device: Device = Field("cpu", description="where the worker computes; `cuda` goes to the gpu queue")

    model_config = ConfigDict(json_schema_extra={"examples": [KERNEL_EXAMPLE]})

    def cost(self) -> Cost:
        """Gram + arccos (~n^2 d), a full symmetric eigendecomposition (~10 n^3, float64),
        and for the empirical kernel n m d for the pre-activations plus n^2 m for S S^T."""
        n, d, m = self.dataset.n, self.dataset.d, self.empirical_width
        flops = 2.0 * n * n * d + 10.0 * n**3 + 2.0 * n * m * d + 2.0 * n * n * m
        chunk = min(m, EMPIRICAL_CHUNK)
        memory = 8.0 * (5 * n * n + 2 * n * d + 2 * n * chunk + chunk * d)
        return Cost(flops=flops, memory_bytes=memory)


ExperimentSpec = Annotated[KernelSpec, Field(discriminator="kind")]
