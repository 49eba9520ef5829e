"""Optimizer specs: one model per `name`, joined in a discriminated union. `"auto"` fields are
chosen by the worker from the spectrum of the job's own kernel, and the result says how."""

from collections.abc import Callable
from typing import Annotated, Literal

from pydantic import Field

from schemas.common import SpecModel
from schemas.costs import STEP_OVERHEAD

Auto = Literal["auto"]
LearningRate = Annotated[float, Field(gt=0, le=1e6)]
Momentum = Annotated[float, Field(ge=0, lt=1)]
BatchSize = Annotated[int, Field(ge=1, le=16384)]


KernelFlops = Callable[[int], float]
"""b -> flop of one finite-width tangent kernel on b points (by its closed form)."""


def gradient_step_flops(b: int, p: int) -> float:
    """One gradient step on b points over p parameters: ~6 b p flop (forward and backward) plus
    STEP_OVERHEAD for the Python and dispatch around it."""
    return 6.0 * b * p + STEP_OVERHEAD


def check_interval(n: int, b: int) -> int:
    """Steps between two tolerance checks of a method whose step does not evaluate the full-batch
    loss L(theta_k) itself: one pass over the data, ceil(n / b) steps of b points (so every step
    at full batch). A mini-batch step would otherwise pay n / b times its own forward pass for
    the check (measured 2.7x slower for SGD, b = 32 of n = 256)."""
    return -(-n // b)


def loss_check_flops(n: int, b: int, p: int) -> float:
    """The full-batch forward pass (~2 n p flop) the trainer adds, amortised over the steps
    between two checks, to a step of b points that does not evaluate L(theta_k) itself."""
    return 2.0 * n * p / check_interval(n, b)


class OptimizerModel(SpecModel):
    """What every optimizer spec says of itself before any kernel is known: whether its `auto`
    choice needs lambda_min, how many points a step touches, and what a step costs."""

    @property
    def uses_auto(self) -> bool:
        """Whether a hyperparameter is `auto` (chosen from a kernel spectrum)."""
        return "auto" in (getattr(self, "lr", None), getattr(self, "momentum", None))

    @property
    def uses_lambda_min(self) -> bool:
        """Whether its `auto` choice needs lambda_min > 0 (a singular kernel has none)."""
        return False

    def points_per_step(self, n: int) -> int:
        """Points a step evaluates: the full batch unless the method draws one."""
        return n

    def step_flops(self, n: int, p: int, kernel_flops: KernelFlops) -> float:
        """Flop of one step on n points over p parameters (a gradient step by default)."""
        return gradient_step_flops(self.points_per_step(n), p)


class GD(OptimizerModel):
    """theta <- theta - lr grad L. auto: lr = 1 / lambda_max."""

    name: Literal["gd"] = "gd"
    lr: LearningRate | Auto = "auto"


class SGD(OptimizerModel):
    """GD on a batch drawn without replacement each step (seeded), its loss scaled by n / batch
    so that the gradient is unbiased. auto: lr = 1 / lambda_max."""

    name: Literal["sgd"] = "sgd"
    lr: LearningRate | Auto = "auto"
    batch_size: BatchSize = 32

    def points_per_step(self, n: int) -> int:
        return min(self.batch_size, n)

    def step_flops(self, n: int, p: int, kernel_flops: KernelFlops) -> float:
        """A gradient step on the batch and, once a pass over the data, the full-batch loss for the
        tolerance check."""
        b = self.points_per_step(n)
        return gradient_step_flops(b, p) + loss_check_flops(n, b, p)


class HeavyBall(OptimizerModel):
    """theta_{k+1} = theta_k - lr grad L(theta_k) + momentum (theta_k - theta_{k-1}) (Polyak 1964).
    auto: Polyak's optimum for the kernel's [lambda_min, lambda_max]."""

    name: Literal["heavy_ball"] = "heavy_ball"
    lr: LearningRate | Auto = "auto"
    momentum: Momentum | Auto = "auto"

    @property
    def uses_lambda_min(self) -> bool:
        return "auto" in (self.lr, self.momentum)


class Nesterov(OptimizerModel):
    """y_k = theta_k + b_k (theta_k - theta_{k-1}), theta_{k+1} = y_k - lr grad L(y_k) (Nesterov
    1983); b_k constant, or `schedule`: b_k = (k - 1) / (k + 2) with k counted from 1.
    auto: lr = 1 / lambda_max and b = (sqrt(kappa) - 1) / (sqrt(kappa) + 1)."""

    name: Literal["nesterov"] = "nesterov"
    lr: LearningRate | Auto = "auto"
    momentum: Momentum | Auto | Literal["schedule"] = "auto"

    @property
    def uses_lambda_min(self) -> bool:
        return self.momentum != "schedule" and "auto" in (self.lr, self.momentum)

    def step_flops(self, n: int, p: int, kernel_flops: KernelFlops) -> float:
        """A gradient step at the look-ahead point and the loss at theta_k for the tolerance check."""
        return gradient_step_flops(n, p) + loss_check_flops(n, n, p)


class Adam(OptimizerModel):
    """Kingma & Ba (2015), bias-corrected."""

    name: Literal["adam"] = "adam"
    lr: LearningRate = 1e-3
    beta1: Momentum = 0.9
    beta2: Momentum = 0.999
    eps: float = Field(1e-8, gt=0, le=1)


class GGN(OptimizerModel):
    """Gram-Gauss-Newton (Cai et al. 2019): on a batch B, theta <- theta - lr J_B^T
    (J_B J_B^T + damping I)^-1 (f_B - y_B), by a Cholesky factorisation; a singular Gram falls
    back to a damped solve, with a warning in the result."""

    name: Literal["ggn"] = "ggn"
    lr: LearningRate = 1.0
    damping: float = Field(0.0, ge=0, le=1e6)
    batch_size: BatchSize | None = Field(None, description="null: the full batch")

    def points_per_step(self, n: int) -> int:
        return min(self.batch_size or n, n)

    def step_flops(self, n: int, p: int, kernel_flops: KernelFlops) -> float:
        """A gradient step's worth of passes plus the batch's tangent kernel, its Cholesky
        factorisation (b^3), one vector-Jacobian product (~4 b p) and the full-batch loss for the
        tolerance check."""
        b = self.points_per_step(n)
        return gradient_step_flops(b, p) + kernel_flops(b) + b**3 + 4.0 * b * p + loss_check_flops(n, b, p)


OptimizerSpec = Annotated[GD | SGD | HeavyBall | Nesterov | Adam | GGN, Field(discriminator="name")]
