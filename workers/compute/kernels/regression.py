"""Kernel ridge regression with the analytic tangent kernel: what an infinitely wide net predicts
on held-out points.

With K = Theta(X, X) (n, n) on the training points and K_* = Theta(X_*, X) (t, n) between the
test and the training points,

    alpha = (K + ridge I)^-1 y,    f(X) = K alpha,    f(X_*) = K_* alpha.

At ridge 0, f is the minimum-norm interpolant of the training labels in the kernel's RKHS: the
function a net of infinite width in the NTK regime converges to under gradient flow on the
squared loss from a zero initial output (Jacot et al. 2018; Arora et al. 2019, "On exact
computation with an infinitely wide neural net"). ridge > 0 is, for the linearised net, the
minimiser of the loss plus (ridge / 2) |theta - theta_0|^2, and regularises a kernel that is
singular or nearly so.
"""

import torch

from schemas.networks import NetworkSpec
from schemas.results import RegressionResult
from workers.compute.datasets import sign_labels
from workers.compute.kernels.analytic import analytic_kernel, cross_kernel, kernel_of

SUGGESTED_RIDGE = 1e-6
"""Ridge the error message suggests for a singular kernel, relative to its mean diagonal."""


def joint_kernel(
    network: NetworkSpec, X: torch.Tensor, X_test: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """K (n, n) on the training points X (n, d) and K_* (t, n) between X_test (t, d) and X: the
    kernel is (|x||x'|)^p F(cos t) entry by entry (analytic.py), so the cross block needs only
    the t x n cosines, never the test points' own t x t block."""
    kernel = kernel_of(network, X.shape[1])
    return analytic_kernel(network, X), cross_kernel(kernel, X_test, X)


def ridge_predictions(
    K: torch.Tensor, K_test: torch.Tensor, y: torch.Tensor, ridge: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(f(X) (n,), f(X_*) (t,)) with alpha = (K + ridge I)^-1 y solved by Cholesky,
    K + ridge I = L L^T.

    Raises ValueError when K + ridge I is singular to working precision: the factorisation fails
    or a pivot L_ii^2 is at most n eps times the largest diagonal entry. Every pivot is at least
    lambda_min, so the solve would then amplify rounding beyond meaning; an exactly singular
    kernel (duplicate points) leaves pivots of a few eps."""
    n = K.shape[0]
    shifted = K + ridge * torch.eye(n, dtype=K.dtype, device=K.device)
    L, info = torch.linalg.cholesky_ex(shifted)
    diagonal = shifted.diagonal()
    threshold = n * torch.finfo(K.dtype).eps * diagonal.max()
    if int(info) != 0 or not bool(L.diagonal().square().min() > threshold):
        suggestion = SUGGESTED_RIDGE * float(K.diagonal().mean())
        raise ValueError(
            f"the kernel on the {n} training points plus ridge {ridge:g} is singular to working "
            "precision (duplicate or nearly parallel points, or float32): set regression.ridge > 0, "
            f"e.g. {suggestion:.1e}"
        )
    alpha = torch.cholesky_solve(y[:, None], L)[:, 0]  # (n,)
    return K @ alpha, K_test @ alpha


def kernel_regression(
    K: torch.Tensor,
    K_test: torch.Tensor,
    y: torch.Tensor,
    y_test: torch.Tensor,
    ridge: float,
    kernel: str,
) -> RegressionResult:
    """Fit on (K (n, n), y (n,)), score on (K_* (t, n), y_* (t,)): mean squared errors on both
    sides, and the share of sign mistakes on the test points when every label is +1 or -1."""
    fitted, predicted = ridge_predictions(K, K_test, y, ridge)
    binary = sign_labels(y, y_test)
    test_error = float((torch.sign(predicted) != y_test).to(y.dtype).mean()) if binary else None
    return RegressionResult(
        kernel=kernel,
        ridge=ridge,
        n_train=K.shape[0],
        n_test=K_test.shape[0],
        train_mse=float((fitted - y).square().mean()),
        test_mse=float((predicted - y_test).square().mean()),
        test_error=test_error,
    )
