"""Experiment specs: one model per `kind`, joined in a discriminated union."""

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from schemas.common import Device, SpecModel, device_field, seed_field
from schemas.convex import ConvexSpec
from schemas.costs import (
    ANALYTIC_SKETCH,
    ARCCOS_WORK,
    BLOCK_ENTRIES,
    EMPIRICAL_CHUNK,
    EMPIRICAL_K,
    EMPIRICAL_PRODUCTS,
    EMPIRICAL_SKETCH,
    KRYLOV_BLOCK,
    KRYLOV_PRODUCTS,
    LOBPCG_PRODUCTS,
    SKETCH_RANK,
    Cost,
    sketch_bytes,
    sketch_rank,
)
from schemas.datasets import DatasetSpec, SphereDataset, held_out_count
from schemas.degeneracy import singular_kernel, zero_inputs, zero_labels
from schemas.landscape import LandscapeSpec
from schemas.networks import FullyConnected, NetworkSpec, TwoLayerNet, parameter_count
from schemas.ode import OdeSpec
from schemas.optimizers import GD, HeavyBall, OptimizerSpec
from schemas.weights import InitialWeights, check_initial

EMPIRICAL_WIDTH_MAX = 2**22
DEEP_WIDTH_MAX = 8192
MATRIX_N_MAX = 2048
FULL_SPECTRUM_MAX = 4096
SPECTRUM_PRODUCTS = 400
"""Products with the kernel the extreme eigenpairs may take unless a spec says otherwise."""
DENSE_EMPIRICAL_MAX = 8192
"""Up to this many points finite-width kernels are compared in full (both stored, dense
eigenvalue solves): at 8192 points, m = 2048, that took 28 s and 2.8 GiB against 154 s and
0.7 GiB matrix-free (bench/empirical.py); above, the matrices' memory and n^3 solves win out."""
STORED_MAX = 16384
"""Largest kernel held in memory (2 GiB in float64): regression and finite-width comparisons need
it; above, the kernel is applied block by block and never stored."""
BLOCK_BYTES = 4 * 8 * BLOCK_ENTRIES["cpu"]
"""The row-block temporaries of a matrix-free product: about four float64 blocks at once."""
RIDGE_MAX = 1e8

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


class RegressionSpec(SpecModel):
    """Kernel ridge regression with the analytic kernel, fitted on the training points and
    scored on the held-out test set: f(x) = k(x, X) (K + ridge I)^-1 y. At ridge 0 it is the
    minimum-norm interpolant, the function an infinitely wide net in the NTK regime converges to
    under gradient flow on the squared loss from a zero initial output (Jacot et al. 2018; Arora
    et al. 2019, "On exact computation with an infinitely wide neural net")."""

    ridge: float = Field(
        0.0,
        ge=0.0,
        le=RIDGE_MAX,
        description="added to the kernel's diagonal, in the kernel's units (its diagonal is ~|x|^2, "
        "1/2 for the first-layer ReLU kernel on the unit sphere); 0: the minimum-norm interpolant",
    )


class KernelSpec(SpecModel):
    """The infinite-width tangent kernel of a dataset under a network: its spectrum and label
    alignment and, when asked, the finite-width kernels of random networks beside it."""

    kind: Literal["kernel"] = "kernel"
    dataset: DatasetSpec = Field(default_factory=SphereDataset)
    network: NetworkSpec = Field(default_factory=TwoLayerNet)
    empirical: EmpiricalSpec | None = Field(None, description="also measure finite-width kernels")
    regression: RegressionSpec | None = Field(
        None, description="also fit kernel ridge regression and score it on the test split"
    )
    dtype: Literal["float64", "float32"] = Field(
        "float64",
        description="float64 unless speed matters more than lambda_min: arccos near 1 is ill-conditioned",
    )
    spectrum_k: int = Field(
        32,
        ge=1,
        le=256,
        description=f"above {FULL_SPECTRUM_MAX} points: eigenpairs computed at each end (LOBPCG)",
    )
    spectrum_tolerance: float = Field(
        1e-4,
        ge=1e-12,
        le=0.1,
        description=f"above {FULL_SPECTRUM_MAX} points: relative residual |K v - lambda v| / lambda each "
        "returned pair must reach (the eigenvalue is then within that fraction of one of K's; its "
        "error is typically the square of it)",
    )
    spectrum_products: int = Field(
        SPECTRUM_PRODUCTS,
        ge=2,
        le=5000,
        description=f"above {FULL_SPECTRUM_MAX} points: at most this many products with the kernel; "
        "the result says whether the tolerance was met",
    )
    return_matrix: bool = Field(
        False, description=f"include the analytic kernel matrix (n <= {MATRIX_N_MAX}), base64 float64"
    )
    device: Device = device_field()

    model_config = ConfigDict(json_schema_extra={"examples": [KERNEL_EXAMPLE]})

    @model_validator(mode="after")
    def _sizes(self) -> "KernelSpec":
        if not self.network.analytic:
            raise ValueError(f"the {self.network.activation} net has no closed-form kernel to study")
        if self.network.parameterization != "ntk":
            raise ValueError(
                "kernel jobs use the ntk parameterization: its kernel has a width-independent limit"
            )
        if self.return_matrix and self.dataset.n > MATRIX_N_MAX:
            raise ValueError(
                f"return_matrix needs at most {MATRIX_N_MAX} points, the dataset has {self.dataset.n}"
            )
        if self.regression is not None and self.dataset.test_fraction == 0:
            raise ValueError(
                "regression is scored on held-out points: set dataset.test_fraction > 0 (e.g. 0.25)"
            )
        if self.dataset.n > STORED_MAX and self.needs_matrix():
            raise ValueError(
                f"regression and empirical comparisons other than the two-layer closed form hold the "
                f"n x n kernel: at most {STORED_MAX} points, the dataset has {self.dataset.n} (the "
                "spectrum alone, and two-layer closed-form comparisons, have no such limit)"
            )
        deep = isinstance(self.network, FullyConnected)
        if self.empirical and deep and max(self.empirical.widths) > DEEP_WIDTH_MAX:
            raise ValueError(f"empirical widths of a fully connected net are at most {DEEP_WIDTH_MAX}")
        if (reason := zero_labels(self.dataset)) is not None:
            raise ValueError(f"{reason}, and label energies are undefined")
        if (reason := zero_inputs(self.dataset)) is not None:
            raise ValueError(reason)
        return self

    def matrix_free_empirical(self) -> bool:
        """Whether finite-width kernels are compared without storing any kernel (H_m applied
        through its Jacobian): two-layer nets by the closed form, above DENSE_EMPIRICAL_MAX
        points and without regression (which stores H_inf anyway)."""
        empirical = self.empirical
        return (
            empirical is not None
            and empirical.method == "closed_form"
            and isinstance(self.network, TwoLayerNet)
            and self.dataset.n > DENSE_EMPIRICAL_MAX
            and self.regression is None
        )

    def needs_matrix(self) -> bool:
        """Whether something besides the spectrum needs the n x n kernel: regression, or
        finite-width comparisons other than the matrix-free ones."""
        return self.regression is not None or (
            self.empirical is not None and not self.matrix_free_empirical()
        )

    def stored(self) -> bool:
        """Whether the job holds the n x n kernel: up to FULL_SPECTRUM_MAX points, or to
        STORED_MAX when `needs_matrix`."""
        n = self.dataset.n
        return n <= FULL_SPECTRUM_MAX or (n <= STORED_MAX and self.needs_matrix())

    def cost(self) -> Cost:
        """Analytic kernel (its upper triangle: n^2 d / 2 for the inner products, ARCCOS_WORK per
        entry and hidden layer) and its eigendecomposition (~10 n^3), or above FULL_SPECTRUM_MAX points
        the extreme eigenpairs: LOBPCG_PRODUCTS products with a block of 3k + 8 vectors
        (2 n^2 (3k + 8) each), on a kernel stored (memory O(n (d + r + k)), r = SKETCH_RANK) or
        computed again on each product, after the float32 sketch of r = sketch_rank(n) vectors
        (2 n^2 r, and `sketch_bytes`);
        per empirical width m and replicate, the kernel itself (below) plus two
        symmetric eigenvalue solves (~8 n^3) for lambda_min and the operator-norm distance.
        n counts every point, so the kernel term covers the joint kernel on the training and test
        points that regression computes instead of the training one; regression adds the
        Cholesky factorisation of the n_train x n_train block (n_train^3 / 3), two triangular
        solves and the predictions (~4 n_train^2 + 2 n_test n_train), and two n_train^2 buffers."""
        n, d, depth = self.dataset.n, self.dataset.d, self.network.depth
        k = min(self.spectrum_k, n // 2)
        products = min(LOBPCG_PRODUCTS, self.spectrum_products)
        block = 3 * k + 8
        entries = n * n * (d + ARCCOS_WORK * (depth - 1)) / 2
        eigenpairs = 8.0 * n * (d + 12 * block)
        stored = self.stored()
        if n <= FULL_SPECTRUM_MAX:
            flops, memory = entries + 10.0 * n**3, 8.0 * (5 * n * n + 2 * n * d)
        elif stored:
            flops = entries + products * 2.0 * n * n * block
            eigenpairs += 8.0 * n * 5 * SKETCH_RANK
            memory = 8.0 * n * n + eigenpairs
        else:  # each product computes the upper triangle's entries again; the sketch is one more
            sketch = 2.0 * n * n * sketch_rank(n, ANALYTIC_SKETCH)
            flops = (products + 1) * (entries + 2.0 * n * n * block) + sketch
            eigenpairs += sketch_bytes(n, ANALYTIC_SKETCH)
            memory = eigenpairs + BLOCK_BYTES
        if self.regression is not None:
            n_test = held_out_count(n, self.dataset.test_fraction)
            n_train = n - n_test
            flops += n_train**3 / 3.0 + 4.0 * n_train**2 + 2.0 * n_test * n_train
            memory += 8.0 * 2 * n_train**2
        if self.empirical is not None:
            for m in self.empirical.widths:
                if stored:
                    kernel_flops, kernel_bytes = self._empirical_cost(n, d, m)
                    flops += self.empirical.replicates * (kernel_flops + 8.0 * n**3)
                    memory = max(memory, 8.0 * 7 * n * n + kernel_bytes)
                else:
                    comparison_flops, comparison_bytes = self._matrix_free_cost(n, d, m, entries)
                    flops += self.empirical.replicates * comparison_flops
                    memory = max(memory, comparison_bytes + eigenpairs + BLOCK_BYTES)
        return Cost(flops=flops, memory_bytes=memory)

    def _matrix_free_cost(self, n: int, d: int, m: int, entries: float) -> tuple[float, float]:
        """One matrix-free comparison at width m: a product with H_m through its Jacobian costs
        2 n m d (X W^T) plus 4 n m c b for b vectors, c = d + 1 columns per neuron at most;
        lambda_min(H_m) takes the Nystrom sketch (n / EMPIRICAL_SKETCH vectors) and EMPIRICAL_PRODUCTS products
        of 3 EMPIRICAL_K + 8 vectors; |H_m - H_inf|_2 KRYLOV_PRODUCTS products of KRYLOV_BLOCK
        vectors with both kernels (H_inf's entries again each time); |H_m - H_inf|_F both
        kernels' entries once (2 n^2 m for H_m's patterns). Memory: W, a chunk's Jacobian (about
        BLOCK_ENTRIES numbers), the Krylov basis with its images and H_m's float32 sketch."""
        products = min(EMPIRICAL_PRODUCTS, self.spectrum_products)
        krylov = min(KRYLOV_PRODUCTS, self.spectrum_products)

        def jacobian_product(vectors: int) -> float:
            return 2.0 * n * m * d + 4.0 * n * m * (d + 1) * vectors

        sketch = jacobian_product(sketch_rank(n, EMPIRICAL_SKETCH))
        bottom = sketch + (products + 1) * jacobian_product(3 * EMPIRICAL_K + 8)
        operator = krylov * (jacobian_product(KRYLOV_BLOCK) + entries + 2.0 * n * n * KRYLOV_BLOCK)
        frobenius = entries + 2.0 * n * n * (m + d)
        memory = 8.0 * (m * d + 2 * BLOCK_ENTRIES["cpu"] + 2 * n * KRYLOV_BLOCK * krylov)
        memory += sketch_bytes(n, EMPIRICAL_SKETCH)
        return bottom + operator + frobenius, memory

    def _empirical_cost(self, n: int, d: int, m: int) -> tuple[float, float]:
        depth = self.network.depth
        params = parameter_count(self.network, d, m)
        if self.empirical is not None and self.empirical.method == "autograd":
            return 8.0 * n * params + 2.0 * n * n * params, 8.0 * (3 * n * params + params)
        if depth == 2:
            chunk = min(m, EMPIRICAL_CHUNK)
            return 2.0 * n * m * d + 4.0 * n * n * m, 8.0 * (3 * n * chunk + chunk * d)
        return 6.0 * n * params + 2.0 * depth * n * n * m, 8.0 * (params + 3 * depth * n * m)


TRAIN_EXAMPLE = {
    "kind": "train",
    "dataset": {"name": "sphere", "n": 32, "d": 8, "seed": 0},
    "network": {"name": "two_layer", "activation": "relu", "trained": "first"},
    "width": 4096,
    "optimizers": [{"name": "gd"}, {"name": "heavy_ball"}, {"name": "nesterov"}],
    "steps": 400,
}


class TrainSpec(SpecModel):
    """Train one network on one dataset with several optimizers side by side, R replicates
    each; measure the rate of each run and set it beside the rate theory predicts."""

    kind: Literal["train"] = "train"
    dataset: DatasetSpec = Field(default_factory=SphereDataset)
    network: NetworkSpec = Field(default_factory=TwoLayerNet)
    width: int = Field(1024, ge=1, le=EMPIRICAL_WIDTH_MAX, description="hidden width m")
    optimizers: list[OptimizerSpec] = Field(
        default_factory=lambda: [GD(), HeavyBall()], min_length=1, max_length=8
    )
    replicates: int = Field(1, ge=1, le=16, description="seeds seed, seed + 1, ... per optimizer")
    batching: Literal["auto", "batched", "sequential"] = Field(
        "auto",
        description="run the replicates of an optimizer as one stacked batch or one after the other "
        "(same numbers either way); auto: batched on a GPU, and on a CPU while replicates x n x width "
        "<= 2^22 (faster there; sequential above)",
    )
    seed: int = seed_field(
        "seed of the first replicate's initialisation (unless `initial` gives the weights) and batches"
    )
    initial: InitialWeights | None = Field(
        None,
        description="the weights at step 0, by parameter name (InitialWeights), instead of the seeded "
        "initialisation: every replicate of every optimizer starts from them, and the seeds still "
        "drive everything else that is random (sgd's and ggn's batches); null: drawn from the seeds",
    )
    steps: int = Field(1000, ge=1, le=10**6, description="step budget")
    tolerance: float = Field(1e-24, ge=0, description="stop once the training loss is at most this")
    max_seconds: float = Field(600, gt=0, le=3600, description="wall-clock budget of one run")
    loss: Literal["sum", "mean"] = Field("sum", description="1/2 sum_i (f - y)^2, or divided by n")
    auto_kernel: Literal["empirical", "analytic"] = Field(
        "empirical", description="kernel behind `auto` hyperparameters: the NTK at init, or H_inf"
    )
    record_points: int = Field(256, ge=8, le=512, description="log-spaced steps recorded")
    ntk_drift: bool = Field(False, description="record |H(t) - H(0)|_F / |H(0)|_F (costs a kernel each)")
    dtype: Literal["float64", "float32"] = "float64"
    device: Device = device_field()

    model_config = ConfigDict(json_schema_extra={"examples": [TRAIN_EXAMPLE]})

    @field_validator("initial")
    @classmethod
    def _initial_fits(cls, initial: InitialWeights | None, info: ValidationInfo) -> InitialWeights | None:
        dataset, network, width = (info.data.get(key) for key in ("dataset", "network", "width"))
        if initial is not None and None not in (dataset, network, width):  # else they say why
            check_initial(initial, network, dataset.d, width)
        return initial

    @model_validator(mode="after")
    def _trainable(self) -> "TrainSpec":
        if self.auto_kernel == "analytic" and not self.network.analytic:
            raise ValueError(
                f"auto_kernel 'analytic' needs a closed-form kernel; the {self.network.activation} net has none"
            )
        if isinstance(self.network, FullyConnected) and self.width > DEEP_WIDTH_MAX:
            raise ValueError(f"a fully connected net is at most {DEEP_WIDTH_MAX} wide")
        if (reason := zero_inputs(self.dataset)) is not None:
            raise ValueError(f"{reason}, so training cannot move")
        needing = [f"{o.name} (optimizer {i})" for i, o in enumerate(self.optimizers) if o.uses_lambda_min]
        if needing and (reason := singular_kernel(self.dataset, self.network)) is not None:
            raise ValueError(
                f"{reason}; the auto lr/momentum of {', '.join(needing)} needs lambda_min > 0: "
                "give lr and momentum, or remove the degenerate rows"
            )
        return self

    def parameters(self) -> int:
        return parameter_count(self.network, self.dataset.d, self.width)

    def _kernel_flops(self, n: int) -> float:
        """One finite-width tangent kernel on n points by its closed form."""
        m, d, depth = self.width, self.dataset.d, self.network.depth
        return 2.0 * n * m * d + 4.0 * n * n * m + 6.0 * n * (depth - 2) * m * m

    def cost(self) -> Cost:
        """Per step what the optimizer says a step costs (schemas/optimizers.py: ~6 b p flop over
        the b points of the step plus STEP_OVERHEAD; GGN adds the batch kernel, its Cholesky
        factorisation and a vector-Jacobian product); each record ~4 n p (the metrics' forward passes); kernels at init (every replicate's for an empirical `auto`), at the end and for drift
        records by their closed forms (never the n x p Jacobian); eigenvalue solves ~10 n^3 each."""
        n, p = self.dataset.n, self.parameters()
        flops = 3 * (self._kernel_flops(n) + 10.0 * n**3)
        if self.auto_kernel == "empirical" and any(o.uses_auto for o in self.optimizers):
            flops += (self.replicates - 1) * (self._kernel_flops(n) + 10.0 * n**3)  # auto's envelope
        for optimizer in self.optimizers:
            step = optimizer.step_flops(n, p, self._kernel_flops)
            records = self.record_points * 4.0 * n * p
            flops += self.replicates * (self.steps * step + records + self._kernel_flops(n) + 10.0 * n**3)
        if self.ntk_drift:
            flops += len(self.optimizers) * self.replicates * self.record_points * self._kernel_flops(n)
        depth = self.network.depth
        memory = 8.0 * (8 * p + 6 * depth * n * self.width + 8 * n * n)
        return Cost(flops=flops, memory_bytes=memory)


ExperimentSpec = Annotated[
    KernelSpec | TrainSpec | LandscapeSpec | OdeSpec | ConvexSpec, Field(discriminator="kind")
]
