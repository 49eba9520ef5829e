"""Network specs: the architecture whose tangent kernel (and, later, training) a job studies."""

import math
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from schemas.common import SpecModel
from schemas.weights import parameter_shapes

LAYERS = {"first": "first layer", "second": "second layer", "both": "both layers"}


class TwoLayerNet(SpecModel):
    """f(x) = s_m sum_r a_r sigma(w_r . x), w_r ~ N(0, kappa^2 I_d), a_r uniform in {-c_m, +c_m}
    (Du, Zhai, Poczos, Singh 2019 in the NTK parameterization); `trained` says which layer(s)
    the tangent kernel covers. Parameterizations (s_m, c_m): ntk (m^-1/2, 1), standard
    (1, m^-1/2: the same function at init, a different kernel), mean_field (1/m, 1)."""

    name: Literal["two_layer"] = "two_layer"
    activation: Literal["relu", "quadratic", "tanh"] = Field(
        "relu", description="sigma(t) = max(t, 0), t^2 or tanh t (tanh: no analytic kernel)"
    )
    parameterization: Literal["ntk", "standard", "mean_field"] = "ntk"
    trained: Literal["first", "second", "both"] = Field(
        "first", description="first: W only (Du et al.); second: a only (NNGP); both"
    )
    kappa: float = Field(1.0, gt=0, le=100, description="scale of the first layer at init")

    has_biases: ClassVar[bool] = False

    @property
    def depth(self) -> int:
        return 2

    @property
    def analytic(self) -> bool:
        """Whether the infinite-width kernel has a closed form here."""
        return self.activation != "tanh"

    def layer_scales(self, m: int) -> tuple[float, float]:
        """Factors on the NTK-parameterization kernels (first layer, second layer) at width m:
        the first-layer kernel goes as s_m^2 c_m^2 m, the second-layer one as s_m^2 m."""
        return {"ntk": (1.0, 1.0), "standard": (1.0, float(m)), "mean_field": (1.0 / m, 1.0 / m)}[
            self.parameterization
        ]

    def describe(self) -> str:
        return (
            f"tangent kernel of the two-layer {self.activation} net ({self.parameterization} "
            f"parameterization), {LAYERS[self.trained]} trained"
        )


STD_MAX = 1000.0
"""Largest W_std or b_std (sqrt(d) writes today's first layer explicitly for d up to 10^6)."""
DEPTH_MAX = 16


def _layout(value: Any) -> str:
    return "per_layer" if isinstance(value, list) else "every_layer"


def _per_layer(element: Any) -> Any:
    """One number for every layer, or a list of one per layer (its length checked against the
    depth by the model). The shape picks the branch, so a bad value gets one error, at
    `W_std.every_layer` or `W_std.per_layer.<index>`."""
    return Annotated[
        Annotated[element, Tag("every_layer")]
        | Annotated[list[element], Field(min_length=1, max_length=DEPTH_MAX), Tag("per_layer")],
        Discriminator(_layout),
    ]


WeightStd = _per_layer(Annotated[float, Field(gt=0, le=STD_MAX)])
BiasStd = _per_layer(Annotated[float, Field(ge=0, le=STD_MAX)])


class FullyConnected(SpecModel):
    """A depth-L ReLU net in neural-tangents' stax NTK parameterization (Novak et al. 2020),
    layer l = 1..L with fan-in n_{l-1} (n_0 = d, then the width m):

        h^l = W_std_l / sqrt(n_{l-1}) W^l x^{l-1} + b_std_l b^l,   W^l, b^l ~ N(0, 1),
        x^0 = x,  x^l = relu(h^l),  f(x) = h^L   (no relu after the readout).

    Defaults (W_std unset, b_std = 0): W_std = sqrt(d), sqrt(2), ..., sqrt(2), 1 and no biases,
    i.e. h^1 = W^1 x, h^l = sqrt(2/m) W^l relu(h^{l-1}), f = m^-1/2 W^L relu(h^{L-1}). Depth 2
    is the two-layer net with both layers trained (`trained: all`) or the second only (`last`)."""

    analytic: ClassVar[bool] = True
    parameterization: ClassVar[str] = "ntk"

    name: Literal["fully_connected"] = "fully_connected"
    depth: int = Field(3, ge=2, le=DEPTH_MAX, description="number of weight layers L")
    activation: Literal["relu"] = "relu"
    W_std: WeightStd | None = Field(
        None,
        description="stax's W_std: layer l multiplies W^l x^{l-1} by W_std_l / sqrt(fan-in); one "
        "number for every layer or a list of `depth`, readout last; unset: sqrt(d) on the first "
        "layer (h^1 = W x), sqrt(2) on hidden layers, 1 on the readout",
    )
    b_std: BiasStd = Field(
        0.0,
        description="stax's b_std: layer l adds b_std_l b^l, b^l ~ N(0, 1) and trained; one number "
        "or a list of `depth`; 0 means no bias in that layer (stax's b_std=None)",
    )
    trained: Literal["all", "last"] = Field(
        "all",
        description="all: every layer, whose kernel is the NTK Theta^L; last: the readout (W^L, b^L) "
        "only, whose kernel is the NNGP Sigma^L (like two_layer's `second`)",
    )

    @model_validator(mode="after")
    def _one_per_layer(self) -> "FullyConnected":
        for name, value in (("W_std", self.W_std), ("b_std", self.b_std)):
            if isinstance(value, list) and len(value) != self.depth:
                raise ValueError(
                    f"{name} has {len(value)} values: give one per layer (depth {self.depth}, "
                    "readout last) or a single number for every layer"
                )
        return self

    def weight_variances(self, d: int) -> list[float]:
        """W_std_l^2 for l = 1..L on d inputs; unset: d, 2, ..., 2, 1 (exact, so that the
        default net's numbers do not pass through a rounded sqrt)."""
        if self.W_std is None:
            return [float(d)] + [2.0] * (self.depth - 2) + [1.0]
        stds = self.W_std if isinstance(self.W_std, list) else [self.W_std] * self.depth
        return [std * std for std in stds]

    def bias_stds(self) -> list[float]:
        """b_std_l for l = 1..L (0: the layer has no bias)."""
        return list(self.b_std) if isinstance(self.b_std, list) else [self.b_std] * self.depth

    @property
    def has_biases(self) -> bool:
        return any(std > 0 for std in self.bias_stds())

    def conventions(self) -> str:
        """The W_std and b_std asked for, or '' for the defaults."""
        parts = []
        if self.W_std is not None:
            parts.append(f"W_std {_numbers(self.W_std)}")
        if self.has_biases:
            parts.append(f"b_std {_numbers(self.b_std)}")
        return f" ({', '.join(parts)})" if parts else ""

    def describe(self) -> str:
        if self.trained == "last":
            return (
                f"NNGP Sigma^L of the depth-{self.depth} ReLU net{self.conventions()}: the kernel of "
                "its readout layer, only the last layer trained"
            )
        return f"tangent kernel of the depth-{self.depth} ReLU net{self.conventions()}, every layer trained"


def _numbers(value: float | list[float]) -> str:
    return f"{value:g}" if not isinstance(value, list) else "[" + ", ".join(f"{v:g}" for v in value) + "]"


NetworkSpec = Annotated[TwoLayerNet | FullyConnected, Field(discriminator="name")]


def parameter_count(network: TwoLayerNet | FullyConnected, d: int, m: int) -> int:
    """Parameters of the net at width m on d inputs, the sizes of `parameter_shapes` added up:
    m d weights in the first layer, m^2 per hidden layer after it and m in the last, plus a fully
    connected net's biases (m in each layer l < L with b_std_l > 0, 1 in the readout if
    b_std_L > 0). Every layer is counted whichever `trained` says."""
    return sum(math.prod(shape) for shape in parameter_shapes(network, d, m).values())
