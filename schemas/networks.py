"""Network specs: the architecture whose tangent kernel (and, later, training) a job studies."""

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from schemas.common import SpecModel

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


class FullyConnected(SpecModel):
    """A depth-L ReLU net in NTK parameterization, every layer trained, no biases:
    h^1 = W^1 x, h^l = sqrt(2/m) W^l relu(h^{l-1}) for 1 < l < L, f = m^-1/2 W^L relu(h^{L-1}),
    all weights N(0, 1). Depth 2 is the two-layer net with both layers trained."""

    analytic: ClassVar[bool] = True
    parameterization: ClassVar[str] = "ntk"

    name: Literal["fully_connected"] = "fully_connected"
    depth: int = Field(3, ge=2, le=16, description="number of weight layers L")
    activation: Literal["relu"] = "relu"

    def describe(self) -> str:
        return f"tangent kernel of the depth-{self.depth} ReLU net, every layer trained"


NetworkSpec = Annotated[TwoLayerNet | FullyConnected, Field(discriminator="name")]


def parameter_count(network: TwoLayerNet | FullyConnected, d: int, m: int) -> int:
    """Weights of the net at width m on d inputs: m d in the first layer, m^2 per hidden layer
    after it and m in the last (no biases). Every layer is counted whichever `trained` says."""
    return m * d + (network.depth - 2) * m * m + m
