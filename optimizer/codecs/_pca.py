"""Principal directions of the calib vectors at one split, shared by every codec fitted there.

Principal components are nested: the m-component PCA is the first m directions of the full one,
and each component's quantization range (calib percentiles) does not depend on how many others are
kept. So one :class:`PrincipalBasis` per (activation, geometry) serves every (components, bits,
coder) a search asks for: the eigendecomposition and the percentiles are computed once.

The directions come from the eigendecomposition of the covariance of up to ``MAX_FIT_VECTORS``
calib vectors (seeded subsample), with signs fixed as scikit-learn's ``svd_flip`` does (the
largest-magnitude entry of each direction is positive), so the basis is deterministic.
"""

from __future__ import annotations

import numpy as np

from optimizer.codecs._blocks import to_vectors

__all__ = ["CLIP_PERCENTILES", "MAX_FIT_VECTORS", "PrincipalBasis"]

MAX_FIT_VECTORS = 50_000
CLIP_PERCENTILES = (0.1, 99.9)


class PrincipalBasis:
    """Mean, every principal direction, and per-component calib ranges computed on demand."""

    def __init__(self, calib: np.ndarray, geometry: str, tile: int, seed: int = 0) -> None:
        self.geometry, self.tile = geometry, tile
        self.vectors = to_vectors(np.asarray(calib, dtype=np.float32), geometry, tile)
        rng = np.random.default_rng(seed)
        n = len(self.vectors)
        sample = self.vectors[rng.choice(n, MAX_FIT_VECTORS, replace=False)] if n > MAX_FIT_VECTORS else self.vectors
        self.mean = sample.mean(axis=0, dtype=np.float64).astype(np.float32)
        self.directions = _principal_directions(sample.astype(np.float64) - self.mean)
        self._lo = np.zeros(0, np.float32)
        self._hi = np.zeros(0, np.float32)
        self._raw_range: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def size(self) -> int:
        """Values per vector (and the most components there are)."""
        return int(self.vectors.shape[1])

    def matches(self, geometry: str, tile: int, size: int) -> bool:
        return (self.geometry, self.tile, self.size) == (geometry, tile, size)

    def coefficients(self, components: int) -> np.ndarray:
        """The calib vectors projected on the first ``components`` directions."""
        return (self.vectors - self.mean) @ self.directions[:components].T  # type: ignore[no-any-return]

    def ranges(self, components: int) -> tuple[np.ndarray, np.ndarray]:
        """Per-component calib percentiles (low, high) of the first ``components`` coefficients."""
        done = len(self._lo)
        if components > done:
            # NOTE: one matrix-vector product per direction, so a component's range does not depend on
            # how many were asked for before (a matrix product's last bits depend on its shape).
            centred = self.vectors - self.mean
            coeffs = np.stack([centred @ self.directions[c] for c in range(done, components)], axis=1)
            lo, hi = np.percentile(coeffs, CLIP_PERCENTILES, axis=0)
            self._lo = np.concatenate([self._lo, lo.astype(np.float32)])
            self._hi = np.concatenate([self._hi, hi.astype(np.float32)])
        return self._lo[:components], self._hi[:components]

    def raw_ranges(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-value calib percentiles of the vectors themselves (the no-PCA path)."""
        if self._raw_range is None:
            lo, hi = np.percentile(self.vectors, CLIP_PERCENTILES, axis=0)
            self._raw_range = (lo.astype(np.float32), hi.astype(np.float32))
        return self._raw_range


def _principal_directions(centred: np.ndarray) -> np.ndarray:
    """Rows: unit directions by decreasing variance, with deterministic signs."""
    cov = centred.T @ centred / max(len(centred) - 1, 1)
    variances, vectors = np.linalg.eigh(cov)
    directions = vectors[:, np.argsort(variances)[::-1]].T
    pivots = np.abs(directions).argmax(axis=1)
    signs = np.sign(directions[np.arange(len(directions)), pivots])
    return (directions * signs[:, None]).astype(np.float32)  # type: ignore[no-any-return]
