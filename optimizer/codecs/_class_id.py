"""The last split: the device runs the whole model and sends the predicted class (1 byte up to 256
classes, else 2; little-endian). Its device transform is the argmax of the logits; the server
answers with that class (a one-hot vector as the logits)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from optimizer.codecs._base import OUTPUT, Codec
from optimizer.codecs._errors import CodecError
from optimizer.codecs._options import ReferenceOptions
from optimizer.codecs._work import Work

if TYPE_CHECKING:
    from torch import nn

__all__ = ["ClassIdCodec"]


class ClassIdCodec(Codec):
    kind = "class-id"
    place = OUTPUT
    options = ReferenceOptions()

    def __init__(self, params: dict[str, Any], shape: tuple[int, ...]) -> None:
        super().__init__(params, shape)
        if len(self.shape) != 1 or not 1 <= self.shape[0] <= 65535:
            raise CodecError(f"the class-id codec needs the logits shape (num_classes,), got {self.shape}")
        self.fitted = True

    def symbols(self, x: np.ndarray) -> np.ndarray:
        """Logits -> the class id (an array of one integer)."""
        return np.asarray([np.argmax(x)], dtype=np.int64)

    def values(self, symbols: np.ndarray) -> np.ndarray:
        onehot = np.zeros(self.shape, dtype=np.float32)
        onehot[int(np.asarray(symbols).reshape(-1)[0])] = 1.0
        return onehot

    def device_graph(self) -> nn.Module:
        from optimizer.codecs._graphs import ArgMax

        return ArgMax()

    def symbols_example(self) -> np.ndarray:
        return np.zeros(1, np.int64)

    def device_work(self, sample_shape: tuple[int, ...]) -> Work:
        return Work(elementwise_ops=self.shape[0])  # the argmax

    def encode_symbols(self, symbols: np.ndarray) -> bytes:
        index = int(np.asarray(symbols).reshape(-1)[0])
        if not 0 <= index < self.shape[0]:
            raise CodecError(f"class id {index} is not one of the {self.shape[0]} classes")
        return index.to_bytes(self.max_body_bytes(), "little")

    def decode_symbols(self, body: bytes) -> np.ndarray:
        if len(body) != self.max_body_bytes() or int.from_bytes(body, "little") >= self.shape[0]:
            raise CodecError(f"class-id body must be {self.max_body_bytes()} byte(s) naming a valid class")
        return np.asarray([int.from_bytes(body, "little")], dtype=np.int64)

    def max_body_bytes(self) -> int:
        return 1 if self.shape[0] <= 256 else 2
