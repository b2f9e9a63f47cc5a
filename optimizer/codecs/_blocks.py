"""Blocked PCA geometry (Assine et al.): how one activation (C x H x W) is cut into vectors.

- ``channel``: one vector of C values per spatial position (H*W vectors); one PCA basis over the
  channels is shared by every position.
- ``tile``: s x s x C blocks (vectors of s*s*C values), one per tile; H and W are zero-padded up to
  a multiple of s. One basis is shared by every tile.
"""

from __future__ import annotations

import numpy as np

__all__ = ["from_vectors", "to_vectors", "vector_size"]


def _padded(h: int, w: int, s: int) -> tuple[int, int]:
    return -(-h // s) * s, -(-w // s) * s


def vector_size(shape: tuple[int, ...], geometry: str, tile: int) -> int:
    return shape[0] if geometry == "channel" else shape[0] * tile * tile


def to_vectors(x: np.ndarray, geometry: str, tile: int) -> np.ndarray:
    """(N, C, H, W) -> (N * blocks, vector size)."""
    n, c, h, w = x.shape
    if geometry == "channel":
        return x.transpose(0, 2, 3, 1).reshape(-1, c)
    ph, pw = _padded(h, w, tile)
    padded = np.zeros((n, c, ph, pw), dtype=x.dtype)
    padded[:, :, :h, :w] = x
    tiles = padded.reshape(n, c, ph // tile, tile, pw // tile, tile).transpose(0, 2, 4, 1, 3, 5)
    return tiles.reshape(-1, c * tile * tile)


def from_vectors(v: np.ndarray, shape: tuple[int, ...], geometry: str, tile: int) -> np.ndarray:
    """(N * blocks, vector size) -> (N, C, H, W); the inverse of :func:`to_vectors`."""
    c, h, w = shape
    if geometry == "channel":
        return v.reshape(-1, h, w, c).transpose(0, 3, 1, 2)
    ph, pw = _padded(h, w, tile)
    tiles = v.reshape(-1, ph // tile, pw // tile, c, tile, tile).transpose(0, 3, 1, 4, 2, 5)
    return tiles.reshape(-1, c, ph, pw)[:, :, :h, :w]


def blocks_per_sample(shape: tuple[int, ...], geometry: str, tile: int) -> int:
    _, h, w = shape
    if geometry == "channel":
        return h * w
    ph, pw = _padded(h, w, tile)
    return (ph // tile) * (pw // tile)
