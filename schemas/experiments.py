"""Experiment specs: one model per `kind`, joined in a discriminated union."""

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from schemas.budget import Cost
from schemas.common import SpecModel, seed_field
from schemas.datasets import DatasetSpec, SphereDataset
from schemas.networks import FullyConnected, NetworkSpec, TwoLayerNet

EMPIRICAL_WIDTH_MAX = 2**22
DEEP_WIDTH_MAX = 8192
MATRIX_N_MAX = 2048
FULL_SPECTRUM_MAX = 4096
EMPIRICAL_CHUNK = 4096
"""Neurons drawn per block when a two-layer empirical kernel is accumulated (bounds its memory)."""

Device = Literal["cpu", "cuda"]

KERNEL_EXAMPLE = {
    "kind": "kernel",
    "dataset": {"name": "sphere", "n": 256, "d": 10, "seed": 0, "labels": {"rule": "relu_teacher", "k": 4}},
    "network": {"name": "two_layer", "activation": "relu", "trained": "first"},
    "empirical": {"widths": [256, 1024, 4096], "replicates": 3, "seed": 0},
}


class EmpiricalSpec(SpecModel):
    """Finite-width kernels of randomly initialised networks beside the analytic one."""

    widths: list[Annotated[int, Field(ge=1, le=EMPIRICAL_WIDTH_MAX)]] = Field(
        min_length=1, max_length=8, description="widths m to measure; several give the m^-1/2 law"
    )
    replicates: int = Field(1, ge=1, le=32, description="independent initialisations per width")
    seed: int = seed_field("seed of the first replicate; replicate r uses seed + r")
    method: Literal["closed_form", "autograd"] = Field(
        "closed_form", description="closed form without autograd, or torch.func Jacobians (any net)"
    )


class KernelSpec(SpecModel):
    """The infinite-width tangent kernel of a dataset under a network: its spectrum and label
    alignment and, when asked, the finite-width kernels of random networks beside it."""

    kind: Literal["kernel"] = "kernel"
    dataset: DatasetSpec = Field(default_factory=SphereDataset)
    network: NetworkSpec = Field(default_factory=TwoLayerNet)
    empirical: EmpiricalSpec | None = Field(None, description="also measure finite-width kernels")
    dtype: Literal["float64", "float32"] = Field(
        "float64",
        description="float64 unless speed matters more than lambda_min: arccos near 1 is ill-conditioned",
    )
    spectrum_k: int = Field(
        32, ge=1, le=256, description=f"above {FULL_SPECTRUM_MAX} points: eigenpairs computed at each end"
    )
    return_matrix: bool = Field(
        False, description=f"include the analytic kernel matrix (n <= {MATRIX_N_MAX}), base64 float64"
    )
    device: Device = Field("cpu", description="where the worker computes; `cuda` goes to the gpu queue")

    model_config = ConfigDict(json_schema_extra={"examples": [KERNEL_EXAMPLE]})

    @model_validator(mode="after")
    def _sizes(self) -> "KernelSpec":
        if self.return_matrix and self.dataset.n > MATRIX_N_MAX:
            raise ValueError(
                f"return_matrix needs at most {MATRIX_N_MAX} points, the dataset has {self.dataset.n}"
            )
        deep = isinstance(self.network, FullyConnected)
        if self.empirical and deep and max(self.empirical.widths) > DEEP_WIDTH_MAX:
            raise ValueError(f"empirical widths of a fully connected net are at most {DEEP_WIDTH_MAX}")
        return self

    def cost(self) -> Cost:
        """Analytic kernel (~n^2 d, plus ~30 n^2 per extra layer) and its eigendecomposition
        (~10 n^3, or above FULL_SPECTRUM_MAX points the extreme eigenpairs only); per empirical
        width m and replicate, the kernel itself (below) plus two
        symmetric eigenvalue solves (~8 n^3) for lambda_min and the operator-norm distance."""
        n, d, depth = self.dataset.n, self.dataset.d, self.network.depth
        flops = 2.0 * n * n * d + 30.0 * n * n * depth
        if n <= FULL_SPECTRUM_MAX:
            flops += 10.0 * n**3
        else:  # an LU factorisation and a few hundred Lanczos products at each end
            flops += 2.0 / 3.0 * n**3 + 2 * 300 * 2.0 * n * n * self.spectrum_k
        memory = 8.0 * (5 * n * n + 2 * n * d)
        if self.empirical is not None:
            for m in self.empirical.widths:
                kernel_flops, kernel_bytes = self._empirical_cost(n, d, m)
                flops += self.empirical.replicates * (kernel_flops + 8.0 * n**3)
                memory = max(memory, 8.0 * 7 * n * n + kernel_bytes)
        return Cost(flops=flops, memory_bytes=memory)

    def _empirical_cost(self, n: int, d: int, m: int) -> tuple[float, float]:
        depth = self.network.depth
        params = m * d + (depth - 2) * m * m + m
        if self.empirical is not None and self.empirical.method == "autograd":
            return 8.0 * n * params + 2.0 * n * n * params, 8.0 * (3 * n * params + params)
        if depth == 2:
            chunk = min(m, EMPIRICAL_CHUNK)
            return 2.0 * n * m * d + 4.0 * n * n * m, 8.0 * (3 * n * chunk + chunk * d)
        return 6.0 * n * params + 2.0 * depth * n * n * m, 8.0 * (params + 3 * depth * n * m)


ExperimentSpec = Annotated[KernelSpec, Field(discriminator="kind")]
