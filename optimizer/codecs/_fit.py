"""What a codec's ``fit`` receives: the calib split at its place (computed only if asked for) and the
context it codes in (where, and a cache shared by the fits of one search)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Calib", "FitContext", "Site"]


@dataclass(frozen=True)
class Site:
    """Where a codec codes: a model spec at an input size, split k (named ``split``), and the
    shape of one sample there (an activation, the logits; ``()`` for the input image)."""

    model: str
    input_size: int
    k: int
    split: str
    place: str
    shape: tuple[int, ...] = ()


class Calib:
    """The calib split at a codec's place: ``activations()`` computes them on first use (a head
    forward over calib), so codecs that learn nothing from data never pay for it."""

    def __init__(self, source: np.ndarray | Callable[[], np.ndarray]) -> None:
        self._source = source
        self._value: np.ndarray | None = source if isinstance(source, np.ndarray) else None

    def activations(self) -> np.ndarray:
        """(N, ...) float32 samples of the calib split at the codec's place."""
        if self._value is None:
            assert callable(self._source)
            self._value = np.asarray(self._source(), dtype=np.float32)
        return self._value


@dataclass
class FitContext:
    """Where a codec is fitted, and a bounded cache shared by the fits of one search (a PCA basis
    serves every component count at its split; a trained bottleneck is loaded once)."""

    site: Site | None = None
    seed: int = 0
    shared: OrderedDict[Any, Any] = field(default_factory=OrderedDict)
    max_shared: int = 8

    def cached(self, key: Any, make: Callable[[], Any]) -> Any:
        """``make()`` once per key, the most recently used ``max_shared`` entries kept."""
        if key not in self.shared:
            self.shared[key] = make()
            while len(self.shared) > self.max_shared:
                self.shared.popitem(last=False)
        self.shared.move_to_end(key)
        return self.shared[key]

    def at(self, site: Site) -> FitContext:
        """The same shared cache, at another site."""
        return FitContext(site, self.seed, self.shared, self.max_shared)


def as_calib(calib: Calib | np.ndarray | None) -> Calib:
    """``fit`` takes a Calib, an array (tests, benchmarks) or nothing (codecs that learn nothing)."""
    if isinstance(calib, Calib):
        return calib
    if calib is None:
        return Calib(_no_calib)
    return Calib(np.asarray(calib, dtype=np.float32))


def _no_calib() -> np.ndarray:
    from optimizer.codecs._errors import CodecError

    raise CodecError("this codec learns from the calib split: pass its activations to fit()")
