"""Uniform b-bit quantization of the activation, per channel, without PCA or entropy coding: the
example of a codec added in one module (plus one line in _registry).

Fitted on calib: each channel's range (the 0.1 and 99.9 percentiles); values outside are clipped.
The body packs every value in ``bits`` bits, so its size is fixed: C x H x W x bits / 8 bytes.
Search spaces offer it with a section of its own: ``uniform: {bits: [8]}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from optimizer.codecs._base import ACTIVATION, Codec
from optimizer.codecs._errors import CodecError
from optimizer.codecs._fit import Calib, FitContext, Site, as_calib
from optimizer.codecs._options import CodecOptions, Suggester
from optimizer.codecs._pca import CLIP_PERCENTILES
from optimizer.codecs._work import QUANTIZE_OPS, Work

if TYPE_CHECKING:
    from torch import nn

    from optimizer.config import Reader

__all__ = ["UniformCodec"]


class _UniformOptions(CodecOptions):
    section = "uniform"
    trial_keys = ("uniform_bits",)

    def parse(self, reader: Reader) -> tuple[int, ...]:
        reader.check_keys({"bits"})
        bits = reader.values("bits", int, minimum=1)
        if max(bits) > 16:
            raise reader.error(f"values must be <= 16, got {max(bits)}", "bits")
        return bits  # type: ignore[no-any-return]

    def suggest(self, trial: Suggester, choices: tuple[int, ...], site: Site) -> dict[str, Any]:
        return {"bits": trial.suggest_categorical("uniform_bits", list(choices))}

    def grid(self, choices: tuple[int, ...], site: Site) -> list[dict[str, Any]]:
        return [{"uniform_bits": b} for b in choices]

    def from_trial(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"bits": params.get("uniform_bits")}


class UniformCodec(Codec):
    kind = "uniform"
    place = ACTIVATION
    options = _UniformOptions()

    def __init__(self, params: dict[str, Any], shape: tuple[int, ...]) -> None:
        super().__init__(params, shape)
        self.bits = int(params.get("bits", 8))
        if not self.shape or not 1 <= self.bits <= 16:
            raise CodecError(
                f"uniform quantization codes (C, ...) activations in 1..16 bits, got {self.shape}, {self.bits}"
            )
        self.lo = self.step = np.zeros(0, np.float32)

    @property
    def levels(self) -> int:
        return (1 << self.bits) - 1

    def _per_channel(self, values: np.ndarray) -> np.ndarray:
        """(C,) -> broadcast over one sample of the codec's shape (channels first)."""
        return values.reshape(-1, *(1,) * (len(self.shape) - 1))

    def fit(self, calib: Calib | np.ndarray | None = None, context: FitContext | None = None) -> UniformCodec:
        samples = as_calib(calib).activations()
        values = samples.reshape(len(samples), self.shape[0], -1).transpose(1, 0, 2).reshape(self.shape[0], -1)
        lo, hi = np.percentile(values, CLIP_PERCENTILES, axis=1)
        self.load_arrays(
            {"lo": lo.astype(np.float32), "step": np.maximum((hi - lo) / self.levels, 1e-8).astype(np.float32)}
        )
        return self

    def symbols(self, x: np.ndarray) -> np.ndarray:
        q = np.rint((np.asarray(x, np.float32) - self._per_channel(self.lo)) / self._per_channel(self.step))
        return np.clip(q, 0, self.levels).astype(np.int64)

    def values(self, symbols: np.ndarray) -> np.ndarray:
        lo, step = self._per_channel(self.lo), self._per_channel(self.step)
        return (lo + np.asarray(symbols, np.int64) * step).astype(np.float32)

    def device_graph(self) -> nn.Module:
        from torch import nn

        from optimizer.codecs._graphs import HalfRound, Quantizer

        return nn.Sequential(
            HalfRound(), Quantizer(self._per_channel(self.lo), self._per_channel(self.step), self.levels)
        )

    def server_graph(self) -> nn.Module:
        from optimizer.codecs._graphs import Dequantizer

        return Dequantizer(self._per_channel(self.lo), self._per_channel(self.step))

    def symbols_example(self) -> np.ndarray:
        return np.zeros(self.shape, np.int32)

    def device_work(self, sample_shape: tuple[int, ...]) -> Work:
        return Work(elementwise_ops=QUANTIZE_OPS * int(np.prod(self.shape)), units={"raw": int(np.prod(self.shape))})

    def server_work(self, sample_shape: tuple[int, ...]) -> Work:
        return Work(elementwise_ops=2 * int(np.prod(self.shape)), units={"raw": int(np.prod(self.shape))})

    def encode_symbols(self, symbols: np.ndarray) -> bytes:
        symbols = np.asarray(symbols, dtype=np.int64)
        if symbols.shape != self.shape or symbols.min() < 0 or symbols.max() > self.levels:
            raise CodecError(f"symbols must be a {self.shape} array of {self.bits}-bit values, got {symbols.shape}")
        bits = (symbols.ravel()[:, None] >> np.arange(self.bits - 1, -1, -1)) & 1
        return np.packbits(bits.astype(np.uint8)).tobytes()

    def decode_symbols(self, body: bytes) -> np.ndarray:
        if len(body) != self.max_body_bytes():
            raise CodecError(f"uniform body is {len(body)} bytes, {self.max_body_bytes()} expected")
        count = int(np.prod(self.shape))
        bits = np.unpackbits(np.frombuffer(body, np.uint8))[: count * self.bits].reshape(count, self.bits)
        return (bits.astype(np.int64) << np.arange(self.bits - 1, -1, -1)).sum(1).reshape(self.shape)

    def max_body_bytes(self) -> int:
        return -(-int(np.prod(self.shape)) * self.bits // 8)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"lo": self.lo, "step": self.step} if self.fitted else {}

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        channels = (self.shape[0],)
        if any(arrays.get(k) is None or arrays[k].shape != channels for k in ("lo", "step")):
            raise CodecError(f"uniform codec state needs 'lo' and 'step' of shape {channels}")
        if not (np.isfinite(arrays["lo"]).all() and (arrays["step"] > 0).all()):
            raise CodecError("uniform codec state needs finite 'lo' and positive 'step'")
        self.lo, self.step = arrays["lo"].astype(np.float32), arrays["step"].astype(np.float32)
        self.fitted = True
