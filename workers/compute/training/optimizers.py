"""The optimizer registry: one class per spec name, each knowing all there is to know of its
method on the compute side: its update (`step(k, theta)`, functional, returning the next
iterate and, when the update evaluated it, the loss at theta_k, which the trainer checks
against its tolerance every step), its `auto` choice from a kernel spectrum (`choose`), the
per-step loss factor linear theory predicts for it (`predict`, training/theory.py) and how its
batch rescales an automatic step (`lr_factor`). Its per-step cost for the budget is on its schema model
(schemas/optimizers.py), so that the API can price a job without torch. Adding an optimizer is
its schema model, its class here, and a test.

Parameters carry a leading replicate axis R (W: (R, m, d)): replicates are independent, so one
update serves a stacked batch of them or a single one (R = 1). No host sync inside (GGN's
singularity check aside)."""

from collections.abc import Callable
from typing import Any, ClassVar

import torch

from schemas.optimizers import OptimizerSpec, check_interval
from schemas.results import PredictedRate
from workers.compute.networks import Params
from workers.compute.training.stacked import Stepped
from workers.compute.training.theory import (
    ArrayLike,
    AutoHyper,
    auto_gd,
    auto_heavy_ball,
    auto_nesterov,
    gd_rate,
    heavy_ball_rate,
    nesterov_rate,
    nesterov_scheduled_rate,
)

Loss = Callable[[Params, torch.Tensor | None], torch.Tensor]  # (theta, batch or None) -> (R,) losses
Residual = Callable[[Params, torch.Tensor | None], torch.Tensor]  # (theta, batch) -> (R, b) f - y
Kernel = Callable[[Params, torch.Tensor | None], torch.Tensor]  # (theta, batch) -> (R, b, b) J J^T
BATCH_BLOCK_MAX = 1024  # most minibatches drawn on the host per copy to the device


def axpy(theta: Params, step: Params, scale: float) -> Params:
    """theta + scale * step, parameter by parameter (one fused kernel each)."""
    return {name: torch.add(value, step[name], alpha=scale) for name, value in theta.items()}


def difference(a: Params, b: Params) -> Params:
    return {name: a[name] - b[name] for name in a}


class Context:
    """What updates need of the problem: the loss, residual and tangent kernel as functions of
    the trained parameters, the number of points, the replicates' seeds (each gets a CPU batch
    generator of its own, seeded apart from its initialisation) and the device the parameters
    live on. `warnings` collects (replicate, message) pairs."""

    def __init__(
        self,
        loss: Loss,
        residual: Residual,
        kernel: Kernel,
        n: int,
        seeds: list[int],
        device: torch.device,
    ) -> None:
        self.loss, self.residual, self.kernel, self.n = loss, residual, kernel, n
        self.generators = [torch.Generator().manual_seed(seed + 2**32) for seed in seeds]
        self.device = device
        self.warnings: list[tuple[int, str]] = []
        self.drawn = torch.empty(len(seeds), 0, 0, dtype=torch.long, device=device)
        self.used = 0
        self.ones: torch.Tensor | None = None

    def gradient(self, theta: Params, batch: torch.Tensor | None) -> tuple[Params, torch.Tensor]:
        """grad L(theta) and the (R,) losses L(theta) (detached) by reverse-mode autograd on
        detached leaves (cheaper per call than torch.func.grad's functional transform, measured in
        bench/train.py). Replicates are
        independent, so the gradient of the summed losses is each replicate's own gradient: the
        (R,) losses are differentiated against a vector of ones, kept from the first step (no
        sum and no fresh ones per step, two kernels fewer)."""
        leaves = {name: value.detach().requires_grad_() for name, value in theta.items()}
        losses = self.loss(leaves, batch)
        if self.ones is None:
            self.ones = torch.ones_like(losses)
        gradients = torch.autograd.grad(losses, list(leaves.values()), grad_outputs=self.ones)
        return dict(zip(leaves, gradients, strict=True)), losses.detach()

    def batch(self, size: int) -> torch.Tensor:
        """(R, size): for each replicate, `size` distinct indices uniformly at random from its
        own CPU generator, so the draws are the same whether replicates run stacked or one by one
        and on any device. Batches are drawn ahead in blocks (16 steps, then doubling up to
        BATCH_BLOCK_MAX) and copied to the device once a block, never once a step."""
        if self.used == self.drawn.shape[1] or self.drawn.shape[2] != size:
            steps = min(max(16, 2 * self.drawn.shape[1]), BATCH_BLOCK_MAX)
            block = [
                torch.stack([torch.randperm(self.n, generator=generator)[:size] for _ in range(steps)])
                for generator in self.generators
            ]
            self.drawn, self.used = torch.stack(block).to(self.device, non_blocking=True), 0
        self.used += 1
        return self.drawn[:, self.used - 1]


class Optimizer:
    """A method of the registry. Subclasses set `name` and `step`; the class methods say what
    `auto` means for them and what theory predicts (by default: GD's step, no prediction)."""

    name: ClassVar[str]

    def __init__(self, hyper: dict[str, Any], context: Context) -> None:
        self.hyper, self.context = hyper, context

    @property
    def size(self) -> int:
        """Points a step evaluates: its `batch_size` (at most n), or all n points."""
        n = self.context.n
        return min(self.hyper.get("batch_size") or n, n)

    @property
    def check_every(self) -> int:
        """Steps between two tolerance checks when `step` returns no loss: one pass over the
        data (schemas/optimizers.py, check_interval)."""
        return check_interval(self.context.n, self.size)

    def step(self, k: int, theta: Params) -> Stepped:
        """theta_{k+1} from theta_k (k = 0, 1, ...), and the (R,) full-batch loss L(theta_k)
        when the update evaluated it on the way (None otherwise: the trainer computes it)."""
        raise NotImplementedError

    @classmethod
    def choose(cls, _hyper: dict[str, Any], eigenvalues: ArrayLike) -> AutoHyper:
        """The `auto` hyperparameters for a kernel spectrum: GD's step 1/lambda_max."""
        return auto_gd(eigenvalues)

    @classmethod
    def predict(cls, _hyper: dict[str, Any], _eigenvalues: ArrayLike, kernel: str) -> PredictedRate:
        """The per-step loss factor linear theory predicts on this spectrum (None: no theory)."""
        return PredictedRate(rate=None, formula=f"{cls.name}: no linear-rate theory", kernel=kernel)

    @classmethod
    def lr_factor(cls, _hyper: dict[str, Any], _n: int) -> tuple[float, str]:
        """What an automatic step is multiplied by for this method, and why (1: as chosen)."""
        return 1.0, ""


class GradientDescent(Optimizer):
    """theta <- theta - lr grad L."""

    name = "gd"

    def step(self, _k: int, theta: Params) -> Stepped:
        gradient, loss = self.context.gradient(theta, None)
        return axpy(theta, gradient, -self.hyper["lr"]), loss

    @classmethod
    def predict(cls, hyper: dict[str, Any], eigenvalues: ArrayLike, kernel: str) -> PredictedRate:
        return gd_rate(eigenvalues, hyper["lr"], kernel)


class StochasticGradient(Optimizer):
    """GD on a batch of `batch_size` points drawn without replacement (each replicate's own
    generator), the batch loss scaled by n / b so that its gradient is unbiased."""

    name = "sgd"

    def step(self, _k: int, theta: Params) -> Stepped:
        batch = self.context.batch(self.size)
        gradient, _ = self.context.gradient(theta, batch)  # a batch's loss, not L(theta)
        return axpy(theta, gradient, -self.hyper["lr"]), None

    @classmethod
    def lr_factor(cls, hyper: dict[str, Any], n: int) -> tuple[float, str]:
        """b / n: the batch loss is scaled by n / b, so a batch's curvature is n / b times a
        full-batch share of it, and GD's automatic step shrinks by the same factor."""
        fraction = min(hyper["batch_size"], n) / n
        return fraction, f", times batch/n = {fraction:.4g} (the batch loss is scaled by n/b)"


class MomentumMethod(Optimizer):
    """A method that remembers the previous iterate theta_{k-1} (None before the first step)."""

    def __init__(self, hyper: dict[str, Any], context: Context) -> None:
        super().__init__(hyper, context)
        self.lr, self.momentum = hyper["lr"], hyper["momentum"]
        self.previous: Params | None = None


class HeavyBallMethod(MomentumMethod):
    """theta_{k+1} = theta_k - lr g_k + momentum (theta_k - theta_{k-1}) (Polyak 1964)."""

    name = "heavy_ball"

    @classmethod
    def choose(cls, _hyper: dict[str, Any], eigenvalues: ArrayLike) -> AutoHyper:
        """Polyak's optimum for the spectrum's [lambda_min, lambda_max]."""
        return auto_heavy_ball(eigenvalues)

    @classmethod
    def predict(cls, hyper: dict[str, Any], eigenvalues: ArrayLike, kernel: str) -> PredictedRate:
        return heavy_ball_rate(eigenvalues, hyper["lr"], hyper["momentum"], kernel)

    def step(self, _k: int, theta: Params) -> Stepped:
        gradient, loss = self.context.gradient(theta, None)
        moved = axpy(theta, gradient, -self.lr)
        if self.previous is not None:
            moved = axpy(moved, difference(theta, self.previous), self.momentum)
        self.previous = theta
        return moved, loss


class NesterovMethod(MomentumMethod):
    """y_k = theta_k + b_k (theta_k - theta_{k-1}), theta_{k+1} = y_k - lr grad L(y_k), with
    b_k constant or (k - 1) / (k + 2) for k = 1, 2, ... (Nesterov 1983; Su, Boyd, Candes 2016)."""

    name = "nesterov"

    @classmethod
    def choose(cls, hyper: dict[str, Any], eigenvalues: ArrayLike) -> AutoHyper:
        """The scheduled method takes GD's step; constant momentum Nesterov's strongly convex
        choice (lr 1/L, b = (sqrt kappa - 1)/(sqrt kappa + 1))."""
        return auto_gd(eigenvalues) if hyper["momentum"] == "schedule" else auto_nesterov(eigenvalues)

    @classmethod
    def predict(cls, hyper: dict[str, Any], eigenvalues: ArrayLike, kernel: str) -> PredictedRate:
        if hyper["momentum"] == "schedule":
            return nesterov_scheduled_rate(eigenvalues, hyper["lr"], kernel)
        return nesterov_rate(eigenvalues, hyper["lr"], hyper["momentum"], kernel)

    def coefficient(self, k: int) -> float:
        """b_k for the step from theta_k (k = 1, 2, ...; step 0 has no previous iterate)."""
        return (k - 1) / (k + 2) if self.momentum == "schedule" else self.momentum

    def step(self, k: int, theta: Params) -> Stepped:
        """The gradient is taken at the look-ahead y_k, so L(theta_k) is evaluated only at k = 0."""
        look = (
            theta
            if self.previous is None
            else axpy(theta, difference(theta, self.previous), self.coefficient(k))
        )
        at_theta = self.previous is None
        self.previous = theta
        gradient, loss = self.context.gradient(look, None)
        return axpy(look, gradient, -self.lr), loss if at_theta else None


class AdamMethod(Optimizer):
    """Kingma & Ba (2015): bias-corrected first and second moments of the gradient."""

    name = "adam"

    def __init__(self, hyper: dict[str, Any], context: Context) -> None:
        super().__init__(hyper, context)
        self.first: Params | None = None
        self.second: Params | None = None

    def step(self, k: int, theta: Params) -> Stepped:
        beta1, beta2, eps, lr = self.hyper["beta1"], self.hyper["beta2"], self.hyper["eps"], self.hyper["lr"]
        g, loss = self.context.gradient(theta, None)
        if self.first is None or self.second is None:
            self.first = {name: torch.zeros_like(value) for name, value in g.items()}
            self.second = {name: torch.zeros_like(value) for name, value in g.items()}
        self.first = {name: beta1 * self.first[name] + (1 - beta1) * g[name] for name in g}
        self.second = {name: beta2 * self.second[name] + (1 - beta2) * g[name] ** 2 for name in g}
        correction1, correction2 = 1 - beta1 ** (k + 1), 1 - beta2 ** (k + 1)
        moved = {
            name: theta[name]
            - lr * (self.first[name] / correction1) / ((self.second[name] / correction2).sqrt() + eps)
            for name in theta
        }
        return moved, loss


class GramGaussNewton(Optimizer):
    """Cai et al. (2019): theta <- theta - lr J_B^T (J_B J_B^T + damping I)^-1 (f_B - y_B), with
    J_B the b x p Jacobian of the batch's outputs. The Gram J_B J_B^T is the tangent kernel of
    the batch (closed form, memory O(b^2 + b m)) and J_B^T z one vector-Jacobian product, so J_B
    itself is never formed. Cholesky first; a Gram that is not positive definite is solved again
    with damping 100 eps trace / b (and a warning): this check is the method's one host sync per
    step."""

    name = "ggn"

    def solve(self, gram: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """z = (G + damping I)^-1 r per replicate. gram: (R, b, b), residual: (R, b) -> (R, b).
        A non-finite Gram (a diverging run) is left to give a non-finite step: the trainer
        ends that run as diverged at its next record."""
        eye = torch.eye(gram.shape[-1], dtype=gram.dtype, device=gram.device)
        factor, info = torch.linalg.cholesky_ex(gram + self.hyper["damping"] * eye)
        singular = (info != 0) & torch.isfinite(gram).all(dim=(-2, -1))
        if bool(singular.any()):
            floor = 100 * torch.finfo(gram.dtype).eps * gram.diagonal(dim1=-2, dim2=-1).mean(-1)
            damping = self.hyper["damping"] + torch.where(singular, floor, 0.0)
            for replicate in singular.nonzero()[:, 0].tolist():
                message = f"singular Gram: damped solve with damping {float(damping[replicate]):.3g}"
                self.context.warnings.append((replicate, message))
            factor, info = torch.linalg.cholesky_ex(gram + damping[:, None, None] * eye)
            if bool(((info != 0) & singular).any()):
                raise ValueError("ggn: the Gram matrix is singular even when damped; set damping > 0")
        return torch.cholesky_solve(residual[..., None], factor)[..., 0]

    def step(self, _k: int, theta: Params) -> Stepped:
        """L(theta_k) is left to the trainer (a forward pass, small beside the batch's kernel and
        Cholesky factorisation)."""
        batch = None if self.size == self.context.n else self.context.batch(self.size)
        leaves = {name: value.detach().requires_grad_() for name, value in theta.items()}
        residual = self.context.residual(leaves, batch)
        z = self.solve(self.context.kernel(theta, batch), residual.detach())
        update = torch.autograd.grad(residual, list(leaves.values()), grad_outputs=z)  # J_B^T z
        moved = {
            name: theta[name] - self.hyper["lr"] * piece for name, piece in zip(leaves, update, strict=True)
        }
        return moved, None


OPTIMIZERS: dict[str, type[Optimizer]] = {
    method.name: method
    for method in (
        GradientDescent,
        StochasticGradient,
        HeavyBallMethod,
        NesterovMethod,
        AdamMethod,
        GramGaussNewton,
    )
}


def with_auto(spec: OptimizerSpec, chosen: AutoHyper, n: int) -> tuple[dict[str, Any], str]:
    """The spec's hyperparameters with each `auto` field taken from `chosen`, an automatic step
    times the method's `lr_factor`, and why."""
    hyper = spec.model_dump(exclude={"name"})
    reason = chosen.reason
    for key, value in (("lr", chosen.lr), ("momentum", chosen.momentum)):
        if hyper.get(key) == "auto":
            hyper[key] = value
    if spec.lr == "auto":
        factor, why = OPTIMIZERS[spec.name].lr_factor(hyper, n)
        hyper["lr"] *= factor
        reason += why
    return hyper, reason


def resolve(spec: OptimizerSpec, eigenvalues: ArrayLike, n: int) -> tuple[dict[str, Any], str | None]:
    """The optimizer's hyperparameters with every `auto` chosen from the kernel spectrum by its
    method, and why (None: nothing was automatic)."""
    hyper = spec.model_dump(exclude={"name"})
    if "auto" not in (hyper.get("lr"), hyper.get("momentum")):
        return hyper, None
    return with_auto(spec, OPTIMIZERS[spec.name].choose(hyper, eigenvalues), n)
