"""Network specs."""

from typing import Literal

from schemas.common import SpecModel


class TwoLayerReLU(SpecModel):
    """Du et al. (2019): f(x) = m^-1/2 sum_r a_r relu(w_r . x), a_r in {-1,+1} frozen, w_r ~ N(0, I).

    Only the first layer is trained, so its tangent kernel is the first-layer Gram H.
    """

    name: Literal["two_layer_relu"] = "two_layer_relu"
