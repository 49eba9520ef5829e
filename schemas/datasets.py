"""Dataset specs: where the inputs X (n, d) and labels y (n,) of an experiment come from."""

from typing import Annotated, Literal

from pydantic import Field, model_validator

from schemas.common import SpecModel, seed_field

N_MAX = 4096
D_MAX = 4096
INLINE_VALUES_MAX = 1_000_000
VALUE_MAX = 1e12

Value = Annotated[float, Field(ge=-VALUE_MAX, le=VALUE_MAX)]


class RandomSignLabels(SpecModel):
    """y_i uniform in {-1, +1}, independent of x_i."""

    rule: Literal["random_sign"] = "random_sign"


class LinearLabels(SpecModel):
    """y_i = <beta, x_i> with beta uniform on the unit sphere."""

    rule: Literal["linear"] = "linear"


class ReluTeacherLabels(SpecModel):
    """y_i = k^-1/2 sum_j a_j relu(<v_j, x_i>), v_j uniform on the unit sphere, a_j uniform in {-1,+1}."""

    rule: Literal["relu_teacher"] = "relu_teacher"
    k: int = Field(4, ge=1, le=1024, description="number of teacher neurons")


LabelRule = Annotated[RandomSignLabels | LinearLabels | ReluTeacherLabels, Field(discriminator="rule")]


class SphereDataset(SpecModel):
    """n points drawn uniformly on the unit sphere S^{d-1} (normalised Gaussians), seeded."""

    name: Literal["sphere"] = "sphere"
    n: int = Field(256, ge=2, le=N_MAX, description="number of points")
    d: int = Field(10, ge=2, le=D_MAX, description="input dimension")
    seed: int = seed_field()
    labels: LabelRule = Field(default_factory=RandomSignLabels, description="how labels are made")


class InlineDataset(SpecModel):
    """Data sent in the request: X (n, d) as rows, y (n,)."""

    name: Literal["inline"] = "inline"
    X: list[list[Value]] = Field(min_length=2, max_length=N_MAX, description="inputs, one row each")
    y: list[Value] = Field(min_length=2, max_length=N_MAX, description="labels, one per row of X")

    @model_validator(mode="after")
    def _rectangular(self) -> "InlineDataset":
        d = len(self.X[0])
        if not 1 <= d <= D_MAX:
            raise ValueError(f"X rows must have between 1 and {D_MAX} values, got {d}")
        for i, row in enumerate(self.X):
            if len(row) != d:
                raise ValueError(f"X is not rectangular: row 0 has {d} values, row {i} has {len(row)}")
        if len(self.X) * d > INLINE_VALUES_MAX:
            raise ValueError(f"X has {len(self.X) * d} values, more than {INLINE_VALUES_MAX}")
        if len(self.y) != len(self.X):
            raise ValueError(f"y has {len(self.y)} values but X has {len(self.X)} rows")
        return self

    @property
    def n(self) -> int:
        return len(self.X)

    @property
    def d(self) -> int:
        return len(self.X[0])


DatasetSpec = Annotated[SphereDataset | InlineDataset, Field(discriminator="name")]
