"""The uncompressed reference at a split: the activation as little-endian float16.

Offered at every activation split of every space (it has no parameters): the search scores it as a
reference point, so every study shows what compression gains over sending the activation as is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from optimizer.codecs._base import ACTIVATION, Codec
from optimizer.codecs._errors import CodecError
from optimizer.codecs._options import ReferenceOptions
from optimizer.codecs._work import Work

if TYPE_CHECKING:
    from torch import nn

__all__ = ["Float16Codec"]


class Float16Codec(Codec):
    kind = "float16"
    place = ACTIVATION
    options = ReferenceOptions()
    uncompressed = True

    def symbols(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype="<f2")

    def values(self, symbols: np.ndarray) -> np.ndarray:
        return np.asarray(symbols, dtype=np.float32).reshape(self.shape)

    def device_graph(self) -> nn.Module:
        from optimizer.codecs._graphs import HalfCast

        return HalfCast()

    def server_graph(self) -> nn.Module:
        from optimizer.codecs._graphs import FloatCast

        return FloatCast()

    def symbols_example(self) -> np.ndarray:
        return np.zeros(self.shape, np.float16)

    def device_work(self, sample_shape: tuple[int, ...]) -> Work:
        return Work(units={"float16": int(np.prod(self.shape))})

    def server_work(self, sample_shape: tuple[int, ...]) -> Work:
        return Work(units={"float16": int(np.prod(self.shape))})

    def encode_symbols(self, symbols: np.ndarray) -> bytes:
        return np.asarray(symbols, dtype="<f2").tobytes()

    def decode_symbols(self, body: bytes) -> np.ndarray:
        if len(body) != self.max_body_bytes():
            raise CodecError(f"float16 body is {len(body)} bytes, {self.max_body_bytes()} expected")
        symbols = np.frombuffer(body, dtype="<f2").reshape(self.shape)
        if not np.isfinite(symbols).all():
            raise CodecError("float16 body holds NaN or infinite values, which no activation has")
        return symbols

    def max_body_bytes(self) -> int:
        return 2 * int(np.prod(self.shape))
