"""Teacher-student loss of two-layer ReLU nets: value, gradient and Hessian in closed form.

Student f(x) = sum_i a_i relu(w_i.x) with W: (n, d) (rows are neurons) and output weights a: (n,)
(fixed to ones, or trained); teacher g(x) = sum_j relu(v_j.x), V: (k, d), output weights b = 1.

Population loss for x ~ N(0, I_d) (Safran & Shamir 2018; Arjevani & Field 2020), with the ReLU
arc-cosine kernel kap(w, v) = E[relu(w.x) relu(v.x)] = |w||v| (sin t + (pi - t) cos t) / (2 pi)
(Cho & Saul 2009), t the angle between w and v:

    L(W, a) = 1/2 [a^T K(W, W) a - 2 a^T K(W, V) b + b^T K(V, V) b].

Derivatives of kap with respect to its first argument (u = w/|w|, z^ = z/|z|, c = cos t,
s = sin t, p = z^ - c u, q = u - c z^, so |p| = |q| = s):

    g(w, z)   = grad_w kap         = (|z| s u + (pi - t) z) / (2 pi),
    H11(w, z) = d^2 kap / dw^2     = |z| / (2 pi |w|) [s (I - u u^T) + p p^T / s],
    H12(w, z) = d^2 kap / dw dz    = [(pi - t) I + s u z^^T + p q^T / s] / (2 pi).

Policy at the non-differentiable points: parallel or antiparallel pairs (s = 0) take the limit of
these formulas (kap is C^2 there: it grows like |angle|^3, so p p^T / s and p q^T / s -> 0); the
angle is atan2(|p|, c), accurate at every angle. At w = 0 the loss is not differentiable (kap is
positively homogeneous of degree 1 in w); norms are clamped so nothing is NaN, and callers must
treat neurons with tiny norms as outside the domain (see `dead_neurons`).

All functions are batched over R parameter vectors theta: (R, P), P = n d (+ n when a is trained),
laid out as [W.flatten(), a]. float64 throughout.
"""

import math
from dataclasses import dataclass
from typing import Protocol

import torch

TWO_PI = 2 * math.pi
DEAD_NORM = 1e-8
"""Neurons with |w_i| below this (relative to the teacher's largest norm) are outside the domain
where the loss is differentiable."""


@dataclass(frozen=True)
class Layout:
    """How a flat parameter vector theta: (R, P) holds W: (R, n, d) and, if trained, a: (R, n)."""

    n: int
    d: int
    trained: bool

    @property
    def size(self) -> int:
        return self.n * self.d + (self.n if self.trained else 0)

    def split(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """theta: (R, P) -> W: (R, n, d), a: (R, n) (ones when the output layer is fixed)."""
        R, nd = theta.shape[0], self.n * self.d
        W = theta[:, :nd].reshape(R, self.n, self.d)
        a = theta[:, nd:] if self.trained else theta.new_ones(R, self.n)
        return W, a

    def join(self, W: torch.Tensor, a: torch.Tensor | None = None) -> torch.Tensor:
        """W: (R, n, d), a: (R, n) -> theta: (R, P); a is dropped when the output layer is fixed."""
        flat = W.reshape(W.shape[0], -1)
        if not self.trained:
            return flat
        if a is None:
            raise ValueError("trained output weights need values")
        return torch.cat([flat, a], dim=1)


@dataclass(frozen=True)
class Pairs:
    """Geometry of every pair (w_i, z_j), W: (R, n, d), Z: (R, m, d)."""

    w_norm: torch.Tensor  # (R, n)
    z_norm: torch.Tensor  # (R, m)
    u: torch.Tensor  # (R, n, d)  w_i / |w_i|
    zhat: torch.Tensor  # (R, m, d)  z_j / |z_j|
    cos: torch.Tensor  # (R, n, m)
    sin: torch.Tensor  # (R, n, m)
    theta: torch.Tensor  # (R, n, m)
    p: torch.Tensor  # (R, n, m, d)  z^_j - cos_ij u_i


def pairs_of(W: torch.Tensor, Z: torch.Tensor) -> Pairs:
    """Angles between all rows of W: (R, n, d) and Z: (R, m, d), t = atan2(|z^ - c u|, c)."""
    tiny = torch.finfo(W.dtype).tiny
    w_norm, z_norm = W.norm(dim=-1), Z.norm(dim=-1)
    u, zhat = W / w_norm.clamp_min(tiny)[..., None], Z / z_norm.clamp_min(tiny)[..., None]
    cos = (u @ zhat.transpose(1, 2)).clamp(-1.0, 1.0)
    p = zhat[:, None, :, :] - cos[..., None] * u[:, :, None, :]
    sin = p.norm(dim=-1)
    return Pairs(w_norm, z_norm, u, zhat, cos, sin, torch.atan2(sin, cos), p)


def kernel(pairs: Pairs) -> torch.Tensor:
    """kap(w_i, z_j) = |w||z| (sin t + (pi - t) cos t) / (2 pi): (R, n, m)."""
    shape = pairs.sin + (math.pi - pairs.theta) * pairs.cos
    return pairs.w_norm[..., None] * pairs.z_norm[:, None, :] * shape / TWO_PI


def pair_gradients(pairs: Pairs, Z: torch.Tensor) -> torch.Tensor:
    """g(w_i, z_j) = (|z_j| s_ij u_i + (pi - t_ij) z_j) / (2 pi): (R, n, m, d)."""
    radial = (pairs.z_norm[:, None, :] * pairs.sin)[..., None] * pairs.u[:, :, None, :]
    return (radial + (math.pi - pairs.theta)[..., None] * Z[:, None, :, :]) / TWO_PI


def weighted_gradient(pairs: Pairs, Z: torch.Tensor, coeff: torch.Tensor) -> torch.Tensor:
    """sum_j coeff_j g(w_i, z_j) with coeff: (R, m), without forming the (R, n, m, d) pairs."""
    radial = (pairs.sin * (pairs.z_norm * coeff)[:, None, :]).sum(-1)[..., None] * pairs.u
    return (radial + ((math.pi - pairs.theta) * coeff[:, None, :]) @ Z) / TWO_PI


def _over_sin(pairs: Pairs) -> torch.Tensor:
    """p / sqrt(s), so that outer products give p p^T / s -> 0 as s -> 0: (R, n, m, d)."""
    root = pairs.sin.sqrt().clamp_min(torch.finfo(pairs.sin.dtype).tiny)
    return pairs.p / root[..., None]


def weighted_self_hessian(pairs: Pairs, coeff: torch.Tensor) -> torch.Tensor:
    """sum_j coeff_j H11(w_i, z_j) = sum_j coeff_j |z_j| / (2 pi |w_i|) [s (I - u u^T) + p p^T / s]:
    (R, n, d, d)."""
    scale = pairs.z_norm * coeff  # (R, m)
    d = pairs.u.shape[-1]
    eye = torch.eye(d, dtype=pairs.u.dtype, device=pairs.u.device)
    projector = eye - pairs.u[..., :, None] * pairs.u[..., None, :]
    tangential = (pairs.sin * scale[:, None, :]).sum(-1)[..., None, None] * projector
    r = _over_sin(pairs)
    normal = torch.einsum("rm,rnma,rnmb->rnab", scale, r, r)
    denominator = TWO_PI * pairs.w_norm.clamp_min(torch.finfo(pairs.u.dtype).tiny)
    return (tangential + normal) / denominator[..., None, None]


def cross_hessians(pairs: Pairs) -> torch.Tensor:
    """H12(w_i, z_j) = [(pi - t) I + s u z^^T + p q^T / s] / (2 pi), q = u - c z^: (R, n, m, d, d)."""
    d = pairs.u.shape[-1]
    eye = torch.eye(d, dtype=pairs.u.dtype, device=pairs.u.device)
    u, zhat = pairs.u[:, :, None, :], pairs.zhat[:, None, :, :]
    q = u - pairs.cos[..., None] * zhat
    root = pairs.sin.sqrt().clamp_min(torch.finfo(pairs.sin.dtype).tiny)[..., None]
    out = (math.pi - pairs.theta)[..., None, None] * eye
    out = out + pairs.sin[..., None, None] * u[..., :, None] * zhat[..., None, :]
    out = out + (pairs.p / root)[..., :, None] * (q / root)[..., None, :]
    return out / TWO_PI


class Objective(Protocol):
    """A loss over batched parameters theta: (R, P) with its exact gradient and Hessian."""

    layout: Layout

    def loss(self, theta: torch.Tensor) -> torch.Tensor: ...

    def loss_and_gradient(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

    def hessian(self, theta: torch.Tensor) -> torch.Tensor: ...


class PopulationLoss:
    """L(W, a) = 1/2 E_{x ~ N(0, I)}[(f(x) - g(x))^2] by the arc-cosine closed form (module doc)."""

    def __init__(self, teacher: torch.Tensor, layout: Layout) -> None:
        self.layout = layout
        self.teacher = teacher  # V: (k, d)
        V = teacher[None]
        self.offset = kernel(pairs_of(V, V)).sum()  # b^T K(V, V) b with b = 1

    def _teacher(self, R: int) -> torch.Tensor:
        return self.teacher.expand(R, *self.teacher.shape)

    def loss(self, theta: torch.Tensor) -> torch.Tensor:
        """(R,) losses."""
        W, a = self.layout.split(theta)
        V = self._teacher(W.shape[0])
        student = torch.einsum("ri,rij,rj->r", a, kernel(pairs_of(W, W)), a)
        cross = torch.einsum("ri,rij->r", a, kernel(pairs_of(W, V)))
        return 0.5 * (student - 2 * cross + self.offset)

    def _fields(self, W: torch.Tensor, a: torch.Tensor) -> tuple[Pairs, Pairs, torch.Tensor]:
        """Pairs with the student and the teacher, and F_i = sum_j a_j g(w_i, w_j) - sum_j
        g(w_i, v_j), so that dL/dw_i = a_i F_i."""
        V = self._teacher(W.shape[0])
        own, teach = pairs_of(W, W), pairs_of(W, V)
        ones = W.new_ones(W.shape[0], V.shape[1])
        F = weighted_gradient(own, W, a) - weighted_gradient(teach, V, ones)
        return own, teach, F

    def loss_and_gradient(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(R,) losses and (R, P) gradients: dL/dw_i = a_i F_i, dL/da_i = (K(W, W) a - K(W, V) 1)_i."""
        W, a = self.layout.split(theta)
        own, teach, F = self._fields(W, a)
        K_own, K_teach = kernel(own), kernel(teach)
        student = torch.einsum("ri,rij,rj->r", a, K_own, a)
        loss = 0.5 * (student - 2 * torch.einsum("ri,rij->r", a, K_teach) + self.offset)
        grad_a = torch.einsum("rij,rj->ri", K_own, a) - K_teach.sum(-1)
        return loss, self.layout.join(a[..., None] * F, grad_a)

    def hessian(self, theta: torch.Tensor) -> torch.Tensor:
        """(R, P, P). Blocks, with F_i from `_fields`:
        d2L/dw_i dw_l = a_i a_l H12(w_i, w_l) + [i = l] a_i (sum_j a_j H11(w_i, w_j) - sum_j H11(w_i, v_j)),
        d2L/dw_i da_l = [i = l] F_i + a_i g(w_i, w_l),    d2L/da_i da_l = kap(w_i, w_l)."""
        W, a = self.layout.split(theta)
        R, n, d = W.shape
        own, teach, F = self._fields(W, a)
        ones = W.new_ones(R, self.teacher.shape[0])
        diagonal = weighted_self_hessian(own, a) - weighted_self_hessian(teach, ones)
        H_ww = (a[:, :, None] * a[:, None, :])[..., None, None] * cross_hessians(own)
        H_ww = H_ww.permute(0, 1, 3, 2, 4).clone()  # (R, n, d, n, d)
        idx = torch.arange(n)
        H_ww[:, idx, :, idx, :] += (a[..., None, None] * diagonal).transpose(0, 1)
        H_ww = H_ww.reshape(R, n * d, n * d)
        if not self.layout.trained:
            return H_ww
        H_wa = a[:, :, None, None] * pair_gradients(own, W)  # (R, n, l, d)
        H_wa = H_wa.permute(0, 1, 3, 2).clone()  # (R, n, d, l)
        H_wa[:, idx, :, idx] += F.transpose(0, 1)
        H_wa = H_wa.reshape(R, n * d, n)
        top = torch.cat([H_ww, H_wa], dim=2)
        bottom = torch.cat([H_wa.transpose(1, 2), kernel(own)], dim=2)
        return torch.cat([top, bottom], dim=1)


class SampleLoss:
    """L_N(W, a) = 1/(2N) sum_s (f(x_s) - g(x_s))^2 on N fixed points x_s: the empirical loss.

    Piecewise quadratic in W (relu'' = 0 off the kinks w_i.x_s = 0, a null set), so its Hessian is
    J^T J / N plus the residual term of the products a_i relu(w_i.x):
    d2L/dw_i da_i += (1/N) sum_s r_s 1[w_i.x_s > 0] x_s, with J = df(x_s)/dtheta."""

    def __init__(self, teacher: torch.Tensor, layout: Layout, X: torch.Tensor) -> None:
        self.layout = layout
        self.X = X  # (N, d)
        self.y = torch.relu(X @ teacher.T).sum(-1)  # (N,)

    def _forward(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        W, a = self.layout.split(theta)
        Z = W @ self.X.T  # (R, n, N)
        residual = torch.einsum("ri,rin->rn", a, torch.relu(Z)) - self.y
        return Z, a, residual

    def loss(self, theta: torch.Tensor) -> torch.Tensor:
        return 0.5 * self._forward(theta)[2].square().mean(-1)

    def loss_and_gradient(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        Z, a, residual = self._forward(theta)
        N = self.X.shape[0]
        F = torch.einsum("rin,rn,nd->rid", (Z > 0).to(Z.dtype), residual, self.X) / N
        grad_a = torch.einsum("rin,rn->ri", torch.relu(Z), residual) / N
        return 0.5 * residual.square().mean(-1), self.layout.join(a[..., None] * F, grad_a)

    def hessian(self, theta: torch.Tensor) -> torch.Tensor:
        Z, a, residual = self._forward(theta)
        R, n, N = Z.shape
        d = self.X.shape[1]
        active = (Z > 0).to(Z.dtype)
        J = (a[..., None] * active).transpose(1, 2)[..., None] * self.X[None, :, None, :]  # (R, N, n, d)
        J = J.reshape(R, N, n * d)
        if self.layout.trained:
            J = torch.cat([J, torch.relu(Z).transpose(1, 2)], dim=2)
        H = J.transpose(1, 2) @ J / N
        if self.layout.trained:
            F = torch.einsum("rin,rn,nd->rid", active, residual, self.X) / N
            rows = torch.arange(n * d).reshape(n, d)
            cols = n * d + torch.arange(n)
            H[:, rows, cols[:, None]] += F
            H[:, cols[:, None], rows] += F
        return H


def dead_neurons(W: torch.Tensor, scale: float) -> torch.Tensor:
    """(R, n) mask of neurons with |w_i| <= DEAD_NORM * scale, where the loss is not differentiable."""
    return W.norm(dim=-1) <= DEAD_NORM * scale
