"""Optimizers as functional updates on a dict of trained parameters: one class per spec name,
each holding its own state, `step(k, theta)` returning the next iterate. No host sync inside."""

from collections.abc import Callable
from typing import Any

import torch
from torch.func import jacrev

from workers.compute.networks import Params

Loss = Callable[[Params, torch.Tensor], torch.Tensor]  # (theta, batch indices or None) -> loss
Residual = Callable[[Params, torch.Tensor], torch.Tensor]  # (theta, indices) -> f - y on them


def axpy(theta: Params, step: Params, scale: float) -> Params:
    """theta + scale * step, parameter by parameter."""
    return {name: value + scale * step[name] for name, value in theta.items()}


def difference(a: Params, b: Params) -> Params:
    return {name: a[name] - b[name] for name in a}


class Context:
    """What updates need of the problem: the loss and residual as functions of the trained
    parameters, the number of points, and a seeded generator for batches."""

    def __init__(self, loss: Loss, residual: Residual, n: int, generator: torch.Generator) -> None:
        self.loss, self.residual, self.n, self.generator = loss, residual, n, generator
        self.warnings: list[str] = []

    def gradient(self, theta: Params, batch: torch.Tensor | None) -> Params:
        """grad L(theta) by reverse-mode autograd on detached leaves (cheaper per call than
        torch.func.grad's functional transform, measured in bench/train.py)."""
        leaves = {name: value.detach().requires_grad_() for name, value in theta.items()}
        value = self.loss(leaves, batch)
        return dict(zip(leaves, torch.autograd.grad(value, list(leaves.values())), strict=True))

    def batch(self, size: int) -> torch.Tensor:
        """`size` distinct indices, uniformly at random (seeded)."""
        return torch.randperm(self.n, generator=self.generator, device=self.generator.device)[:size]


class GradientDescent:
    def __init__(self, hyper: dict[str, Any], context: Context) -> None:
        self.lr, self.context = hyper["lr"], context

    def step(self, _k: int, theta: Params) -> Params:
        return axpy(theta, self.context.gradient(theta, None), -self.lr)


class StochasticGradient:
    def __init__(self, hyper: dict[str, Any], context: Context) -> None:
        self.lr, self.size, self.context = hyper["lr"], min(hyper["batch_size"], context.n), context

    def step(self, _k: int, theta: Params) -> Params:
        batch = self.context.batch(self.size)
        return axpy(theta, self.context.gradient(theta, batch), -self.lr)


class HeavyBallMethod:
    """theta_{k+1} = theta_k - lr g_k + momentum (theta_k - theta_{k-1}) (Polyak 1964)."""

    def __init__(self, hyper: dict[str, Any], context: Context) -> None:
        self.lr, self.momentum, self.context = hyper["lr"], hyper["momentum"], context
        self.previous: Params | None = None

    def step(self, _k: int, theta: Params) -> Params:
        moved = axpy(theta, self.context.gradient(theta, None), -self.lr)
        if self.previous is not None:
            moved = axpy(moved, difference(theta, self.previous), self.momentum)
        self.previous = theta
        return moved


class NesterovMethod:
    """y_k = theta_k + b_k (theta_k - theta_{k-1}), theta_{k+1} = y_k - lr grad L(y_k), with
    b_k constant or (k - 1) / (k + 2) for k = 1, 2, ... (Nesterov 1983; Su, Boyd, Candes 2016)."""

    def __init__(self, hyper: dict[str, Any], context: Context) -> None:
        self.lr, self.momentum, self.context = hyper["lr"], hyper["momentum"], context
        self.previous: Params | None = None

    def coefficient(self, k: int) -> float:
        return k / (k + 3) if self.momentum == "schedule" else self.momentum  # k from 0: (k'-1)/(k'+2)

    def step(self, k: int, theta: Params) -> Params:
        look = (
            theta
            if self.previous is None
            else axpy(theta, difference(theta, self.previous), self.coefficient(k))
        )
        self.previous = theta
        return axpy(look, self.context.gradient(look, None), -self.lr)


class AdamMethod:
    """Kingma & Ba (2015): bias-corrected first and second moments of the gradient."""

    def __init__(self, hyper: dict[str, Any], context: Context) -> None:
        self.hyper, self.context = hyper, context
        self.first: Params | None = None
        self.second: Params | None = None

    def step(self, k: int, theta: Params) -> Params:
        beta1, beta2, eps, lr = self.hyper["beta1"], self.hyper["beta2"], self.hyper["eps"], self.hyper["lr"]
        g = self.context.gradient(theta, None)
        if self.first is None or self.second is None:
            self.first = {name: torch.zeros_like(value) for name, value in g.items()}
            self.second = {name: torch.zeros_like(value) for name, value in g.items()}
        self.first = {name: beta1 * self.first[name] + (1 - beta1) * g[name] for name in g}
        self.second = {name: beta2 * self.second[name] + (1 - beta2) * g[name] ** 2 for name in g}
        correction1, correction2 = 1 - beta1 ** (k + 1), 1 - beta2 ** (k + 1)
        return {
            name: theta[name]
            - lr * (self.first[name] / correction1) / ((self.second[name] / correction2).sqrt() + eps)
            for name in theta
        }


class GramGaussNewton:
    """Cai et al. (2019): theta <- theta - lr J_B^T (J_B J_B^T + damping I)^-1 (f_B - y_B), with
    J_B the b x p Jacobian of the batch's outputs. Cholesky first; a Gram that is not positive
    definite is solved again with damping 1e-12 trace/b (and a warning) - this one check per
    step is the only host sync of the method."""

    def __init__(self, hyper: dict[str, Any], context: Context) -> None:
        self.hyper, self.context = hyper, context

    def step(self, _k: int, theta: Params) -> Params:
        size = self.hyper["batch_size"]
        batch = None if size is None or size >= self.context.n else self.context.batch(size)
        residual = self.context.residual(theta, batch)
        jacobians = jacrev(self.context.residual)(theta, batch)
        names = list(theta)
        J = torch.cat([jacobians[name].reshape(residual.shape[0], -1) for name in names], dim=1)
        gram = J @ J.T
        eye = torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)
        factor, info = torch.linalg.cholesky_ex(gram + self.hyper["damping"] * eye)
        if int(info) != 0:
            damping = 1e-12 * float(gram.diagonal().sum()) / gram.shape[0] + self.hyper["damping"]
            self.context.warnings.append(f"singular Gram: damped solve with damping {damping:.3g}")
            factor = torch.linalg.cholesky(gram + damping * eye)
        z = torch.cholesky_solve(residual[:, None], factor)[:, 0]
        update = J.T @ z
        pieces = update.split([theta[name].numel() for name in names])
        return {
            name: theta[name] - self.hyper["lr"] * piece.reshape(theta[name].shape)
            for name, piece in zip(names, pieces, strict=True)
        }


OPTIMIZERS: dict[str, type] = {
    "gd": GradientDescent,
    "sgd": StochasticGradient,
    "heavy_ball": HeavyBallMethod,
    "nesterov": NesterovMethod,
    "adam": AdamMethod,
    "ggn": GramGaussNewton,
}
