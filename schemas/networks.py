"""Network specs: the architecture whose tangent kernel (and, later, training) a job studies."""

from typing import Annotated, Literal

from pydantic import Field

from schemas.common import SpecModel

LAYERS = {"first": "first layer", "second": "second layer", "both": "both layers"}


class TwoLayerNet(SpecModel):
    """f(x) = m^-1/2 sum_r a_r sigma(w_r . x), w_r ~ N(0, kappa^2 I_d), a_r uniform in {-1, +1}
    (Du, Zhai, Poczos, Singh 2019); `trained` says which layer(s) the tangent kernel covers."""

    name: Literal["two_layer"] = "two_layer"
    activation: Literal["relu", "quadratic"] = Field("relu", description="sigma(t) = max(t, 0) or t^2")
    trained: Literal["first", "second", "both"] = Field(
        "first", description="first: W only (Du et al.); second: a only (NNGP); both"
    )
    kappa: float = Field(1.0, gt=0, le=100, description="scale of the first layer at init")

    @property
    def depth(self) -> int:
        return 2

    def describe(self) -> str:
        return f"tangent kernel of the two-layer {self.activation} net, {LAYERS[self.trained]} trained"


class FullyConnected(SpecModel):
    """A depth-L ReLU net in NTK parameterization, every layer trained, no biases:
    h^1 = W^1 x, h^l = sqrt(2/m) W^l relu(h^{l-1}) for 1 < l < L, f = m^-1/2 W^L relu(h^{L-1}),
    all weights N(0, 1). Depth 2 is the two-layer net with both layers trained."""

    name: Literal["fully_connected"] = "fully_connected"
    depth: int = Field(3, ge=2, le=16, description="number of weight layers L")
    activation: Literal["relu"] = "relu"

    def describe(self) -> str:
        return f"tangent kernel of the depth-{self.depth} ReLU net, every layer trained"


NetworkSpec = Annotated[TwoLayerNet | FullyConnected, Field(discriminator="name")]
