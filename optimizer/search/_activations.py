"""Head activations of a split of the data: one forward per (model, input size) for every split.

A miss for one split point runs a single ONNX Runtime forward of the model's ``taps`` graph
(models.SplitGraph) over the split's images, returning the activation at that split point and at
every other one the space may choose that no cache holds yet: each is stored, so the next trial at
another split of the same model costs nothing. calib and val activations also persist on disk, per
file named by everything that determines them (weights, dataset files, image indices,
preprocessing, split point, torch and ONNX Runtime versions); the test split is scored once, in
groups (``Evaluator.evaluate_many``), and stays in memory.

# NOTE: activations (not the logits of the last split) are kept as float16 in both caches and
# widened when used, so a result is the same whether they were computed now or read back from
# disk. The disk cache is capped (``SPLIT_OPT_CACHE_MAX_GB``, default 4): the least recently
# written files go first.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["ActivationStore", "DiskKey", "TapRequest"]

_FORMAT = 3  # bump when the cached activations' meaning changes (3: fx split points, model preprocessing)
DISK_SPLITS = ("calib", "val")

# What names one split's activations on disk, besides the split point: a JSON-able identity.
DiskKey = list[object]
# Runs the taps of ks over a split's images: ks -> one array per k.
TapsFn = Callable[[list[int]], list[np.ndarray]]


class ActivationStore:
    """Memory LRU (capped in bytes) over the disk cache over one-forward-for-all-splits computation."""

    def __init__(self, cache_dir: Path | None, max_memory_bytes: float = 3e9) -> None:
        self.cache_dir = cache_dir
        self._memory: OrderedDict[tuple[object, ...], np.ndarray] = OrderedDict()
        self._max_bytes = max_memory_bytes

    def path(self, identity: DiskKey, name: str, split: str) -> Path | None:
        if self.cache_dir is None or split not in DISK_SPLITS:
            return None
        ident = json.dumps([_FORMAT, *identity, name, split], default=str)
        return self.cache_dir / "activations" / (hashlib.sha256(ident.encode()).hexdigest()[:24] + ".npy")

    def get(self, request: TapRequest, k: int) -> np.ndarray:
        """The activations at split ``k`` (float32). On a miss, the other ks of the request that no
        cache holds are computed in the same forward, as many as fit half the memory cap."""
        found = self._cached(request, k)
        if found is not None:
            return found.astype(np.float32)
        budget, missing = self._max_bytes / 2 - request.bytes_per_k[k], [k]
        for other in request.ks:
            if other != k and request.bytes_per_k[other] <= budget and self._cached(request, other) is None:
                missing.append(other)
                budget -= request.bytes_per_k[other]
        for kk, acts in zip(missing, request.taps(missing), strict=True):
            self._keep((*request.key, kk, request.split), acts)
            path = self.path(request.identity, request.names[kk], request.split)
            if path is not None:
                _store(path, acts)
        return self._memory[(*request.key, k, request.split)].astype(np.float32)

    def _cached(self, request: TapRequest, k: int) -> np.ndarray | None:
        mkey = (*request.key, k, request.split)
        if mkey in self._memory:
            self._memory.move_to_end(mkey)
            return self._memory[mkey]
        path = self.path(request.identity, request.names[k], request.split)
        if path is not None and path.is_file():
            try:
                acts = np.load(path, allow_pickle=False)
            except (OSError, ValueError):
                path.unlink(missing_ok=True)  # a damaged entry is recomputed, never trusted
                return None
            self._keep(mkey, acts)
            return acts
        return None

    def _keep(self, mkey: tuple[object, ...], acts: np.ndarray) -> None:
        self._memory[mkey] = acts
        self._memory.move_to_end(mkey)
        total = sum(a.nbytes for a in self._memory.values())
        while total > self._max_bytes and len(self._memory) > 1:
            _, old = self._memory.popitem(last=False)
            total -= old.nbytes


@dataclass(frozen=True)
class TapRequest:
    """Everything the store needs to find or compute one (model, input size, split)'s activations.

    Attributes:
        key: names them in memory (model spec, input size).
        ks: every split the space may choose for this model (computed together on a miss).
        names: the split point name of every k (the disk key holds the name, not the number).
        bytes_per_k: bytes of one k's cached activations over the split's images.
        identity: what else names them on disk (weights, dataset, indices, preprocessing, versions).
        split: calib, val or test.
        taps: runs the model once over the split's images, returning the activations at the given ks.
    """

    key: tuple[object, ...]
    ks: Sequence[int]
    names: Sequence[str]
    bytes_per_k: Sequence[int]
    identity: DiskKey
    split: str
    taps: TapsFn


def _store(path: Path, acts: np.ndarray) -> None:
    """Write one cache file atomically, then trim the cache to its size cap."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, acts)
        tmp.replace(path)
        files = sorted(path.parent.glob("*.npy"), key=lambda p: p.stat().st_mtime)
        cap = float(os.environ.get("SPLIT_OPT_CACHE_MAX_GB", "4")) * 1e9
        total = sum(p.stat().st_size for p in files)
        for old in files:
            if total <= cap or old == path:
                break
            total -= old.stat().st_size
            old.unlink(missing_ok=True)
    except OSError:
        pass  # a full or read-only disk costs recomputation, not the search
