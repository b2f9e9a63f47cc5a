"""Non-negative least squares in numpy (SciPy is not a run-time dependency): the calibration's fits."""

from __future__ import annotations

import numpy as np

__all__ = ["nnls"]


def nnls(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, float]:
    """argmin ||a x - b|| subject to x >= 0, and the residual norm (Lawson and Hanson, 1974).

    The active-set method: move the variable whose gradient most wants to grow into the passive
    set, solve the unconstrained least squares on that set, and step back towards the previous
    point whenever a passive variable would turn negative. Exact for the handful of unknowns here.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    n = a.shape[1]
    x = np.zeros(n)
    passive = np.zeros(n, dtype=bool)
    tol = 10 * np.finfo(np.float64).eps * max(a.shape) * max(1.0, float(np.abs(a).sum(axis=0).max(initial=0.0)))
    for _ in range(3 * n + 10):
        gradient = a.T @ (b - a @ x)
        if passive.all() or not (gradient[~passive] > tol).any():
            break
        passive[int(np.argmax(np.where(passive, -np.inf, gradient)))] = True
        while True:
            trial = np.zeros(n)
            trial[passive] = np.linalg.lstsq(a[:, passive], b, rcond=None)[0]
            if (trial[passive] > tol).all():
                x = trial
                break
            blocking = np.flatnonzero(passive & (trial <= tol))
            ratios = x[blocking] / np.maximum(x[blocking] - trial[blocking], np.finfo(np.float64).tiny)
            x = x + float(ratios.min()) * (trial - x)
            passive[blocking[int(np.argmin(ratios))]] = False  # the first to reach zero leaves for sure
            passive &= x > tol
            x[~passive] = 0.0
    return x, float(np.linalg.norm(a @ x - b))
