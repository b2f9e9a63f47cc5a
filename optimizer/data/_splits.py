"""Deterministic, seeded, disjoint splits: train, calib, val, test.

- train: zoo training only.  calib: fits codecs.  val: scores search trials.
- test: re-scores the final Pareto set once, and the zoo's model cards.

A dataset with an official test split keeps its official train split as train and carves calib,
val and test (in that order) from a seeded permutation of its official test split. A dataset
without one carves test, val and calib from a permutation of everything, and train is the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optimizer.data._dataset import ImageDataset, SplitSizes
from optimizer.errors import UserError

__all__ = ["DataSplits", "make_splits"]

SPLIT_NAMES = ("train", "calib", "val", "test")


@dataclass(frozen=True)
class DataSplits:
    """Index arrays into one dataset; pairwise disjoint."""

    train: np.ndarray
    calib: np.ndarray
    val: np.ndarray
    test: np.ndarray
    seed: int

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in SPLIT_NAMES:
            raise UserError(f"unknown split {name!r}; choose one of {', '.join(SPLIT_NAMES)}")
        return getattr(self, name)  # type: ignore[no-any-return]

    def sizes(self) -> dict[str, int]:
        return {name: len(self[name]) for name in SPLIT_NAMES}


def _count(size: float, pool: int, name: str) -> int:
    if isinstance(size, float) and not size.is_integer():
        if not 0 < size < 1:
            raise UserError(f"split size {name}={size} must be a count or a fraction in (0, 1)")
        return max(1, round(size * pool))
    if size < 0:
        raise UserError(f"split size {name}={size} must not be negative")
    return int(size)


def _take(perm: np.ndarray, counts: list[tuple[str, int]]) -> dict[str, np.ndarray]:
    total = sum(n for _, n in counts)
    if total > len(perm):
        wanted = ", ".join(f"{name}={n}" for name, n in counts)
        raise UserError(
            f"split sizes {wanted} need {total} samples but the pool holds {len(perm)}; ask for smaller splits"
        )
    out, start = {}, 0
    for name, n in counts:
        out[name] = np.sort(perm[start : start + n])
        start += n
    out["_rest"] = np.sort(perm[start:])
    return out


def make_splits(dataset: ImageDataset, sizes: SplitSizes | None = None, seed: int = 0) -> DataSplits:
    """Carve the four splits of ``dataset`` (see the module docstring for the rule)."""
    sizes = sizes or dataset.default_sizes
    rng = np.random.default_rng(seed)
    if dataset.official_test is not None and dataset.official_train is not None:
        pool = rng.permutation(dataset.official_test)
        names = ("calib", "val", "test")
        parts = _take(pool, [(n, _count(getattr(sizes, n), len(pool), n)) for n in names])
        train = dataset.official_train
    else:
        pool = rng.permutation(len(dataset))
        names = ("test", "val", "calib")
        parts = _take(pool, [(n, _count(getattr(sizes, n), len(pool), n)) for n in names])
        train = parts["_rest"]
    if sizes.train is not None:
        n_train = _count(sizes.train, len(train), "train")
        if n_train > len(train):
            raise UserError(
                f"split size train={n_train} exceeds the {len(train)} train samples available; ask for fewer"
            )
        train = np.sort(np.random.default_rng(seed + 1).permutation(train)[:n_train])
    return DataSplits(train=train, calib=parts["calib"], val=parts["val"], test=parts["test"], seed=seed)
