"""The learned bottleneck's codec: integer latent <-> ANS bitstream, with the learned prior as model.

The neural parts (encoder on the device, decoder on the server; optimizer.models._bottleneck) run
outside this codec, like the head and the tail: the codec encodes the rounded latent (L, h, w)
that the encoder produced and decodes it back exactly. Its static model is the trained prior,
tabulated per latent channel over a bounded integer range (``offset[c] .. offset[c] + R - 1``; the
prior's tail mass beyond it is folded into the edge bins and values beyond it are clamped), turned
into integer frequencies and coded with ANS through constriction, one model per channel, positions
in raster order. The state (offsets, frequencies) is a pair of numpy arrays; ``params`` name the
weight file and its SHA-256, so the state hash - pinned by the bundle's manifest - binds the codec
to the trained bottleneck it came from.

A bottleneck trained with a hyperprior (``entropy="hyperprior"``) codes its latent with
``HyperpriorCoder`` instead (optimizer.codecs._hyperprior): the state then holds the side nets'
weights and the side prior's tables, the offset is -Y for every channel and the symbols the
same (h * w, L) array, so the deployed graphs, the search and the wire see no difference.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from optimizer.codecs._base import Codec
from optimizer.codecs._entropy import AnsCoder
from optimizer.codecs._errors import CodecError
from optimizer.codecs._hyperprior import HYPER_KEYS, LATENT_BOUND, HyperpriorCoder
from optimizer.codecs._work import Work

__all__ = ["BottleneckCodec", "frequencies_of"]

FREQUENCY_BITS = 20  # tabulated probabilities -> integer frequencies (each at least 1)
_MAX_ALPHABET = 4096


def frequencies_of(pmf: np.ndarray) -> np.ndarray:
    """Probabilities (L, R) -> positive integer frequencies summing to about 2**FREQUENCY_BITS."""
    pmf = np.asarray(pmf, dtype=np.float64)
    return np.maximum(1, np.rint(pmf * (1 << FREQUENCY_BITS))).astype(np.int64)


class BottleneckCodec(Codec):
    kind = "bottleneck"

    def __init__(self, params: dict[str, Any], shape: tuple[int, ...]) -> None:
        super().__init__(params, shape)
        if len(self.shape) != 3 or min(self.shape) < 1:
            raise CodecError(f"the bottleneck codec encodes (L, h, w) latents, got shape {self.shape}")
        if not isinstance(params.get("file"), str):
            raise CodecError("bottleneck codec params need 'file', the trained bottleneck's weight file")
        self.offset: np.ndarray | None = None
        self.coder: AnsCoder | HyperpriorCoder | None = None

    @property
    def positions(self) -> int:
        return self.shape[1] * self.shape[2]

    @property
    def hyper(self) -> HyperpriorCoder | None:
        return self.coder if isinstance(self.coder, HyperpriorCoder) else None

    def device_work(self, sample_shape: tuple[int, ...]) -> Work:
        """Rounding and ANS over the latent; the learned encoder's layers are priced with the head's,
        a hyperprior's side nets (numpy, in the codec) here as convolutions."""
        values = int(np.prod(self.shape))
        hyper = self.hyper
        if hyper is None:
            return Work(elementwise_ops=2 * values, units={"ans": values}, columns={"ans": self.shape[0]})
        macs = {"conv": hyper.encoder_macs() + hyper.macs()}
        side = hyper.side * hyper.z_shape[1] * hyper.z_shape[2]
        return Work(macs, 4, 2 * values, {"ans": values + side})

    def server_work(self, sample_shape: tuple[int, ...]) -> Work:
        values = int(np.prod(self.shape))
        hyper = self.hyper
        if hyper is None:
            return Work(elementwise_ops=values, units={"ans": values}, columns={"ans": self.shape[0]})
        side = hyper.side * hyper.z_shape[1] * hyper.z_shape[2]
        return Work({"conv": hyper.macs()}, 2, values, {"ans": values + side})

    def fit_prior(self, offset: np.ndarray, pmf: np.ndarray) -> BottleneckCodec:
        """Take the tabulated prior (``models.prior_tables``): offsets (L,), probabilities (L, R)."""
        pmf = np.asarray(pmf, dtype=np.float64)
        if pmf.shape[1:] == (1,):  # every channel deterministic: ANS needs an alphabet of two
            pmf = np.pad(pmf, ((0, 0), (0, 1)))
        self.load_arrays({"offset": np.asarray(offset, dtype=np.int64), "counts": frequencies_of(pmf)})
        return self

    def fit_hyperprior(self, nets: dict[str, np.ndarray], z_offset: np.ndarray, z_pmf: np.ndarray) -> BottleneckCodec:
        """Take a hyperprior's side nets (``models.hyperprior_arrays``) and its side prior tabulated
        (``models.prior_tables``: offsets (Z,), probabilities (Z, R))."""
        z_pmf = np.asarray(z_pmf, dtype=np.float64)
        if z_pmf.shape[1:] == (1,):
            z_pmf = np.pad(z_pmf, ((0, 0), (0, 1)))
        offset = np.full(self.shape[0], -LATENT_BOUND, dtype=np.int64)
        side = {"z_offset": np.asarray(z_offset, dtype=np.int64), "z_counts": frequencies_of(z_pmf)}
        self.load_arrays({"offset": offset, **nets, **side})
        return self

    # --- payload body ------------------------------------------------------------------------
    def symbols(self, latent: np.ndarray) -> np.ndarray:
        """Rounded latent (L, h, w) -> symbols (h * w, L) in 0..R-1 (out-of-range values clamped)."""
        assert self.offset is not None and self.coder is not None
        q = np.rint(np.asarray(latent, dtype=np.float64)).astype(np.int64) - self.offset[:, None, None]
        q = np.clip(q, 0, self.coder.alphabet - 1)
        return q.reshape(self.shape[0], self.positions).T

    def clipped_fraction(self, latent: np.ndarray) -> float:
        """Share of one latent's values outside the tabulated range (coded as the nearest edge)."""
        assert self.offset is not None and self.coder is not None
        q = np.rint(latent).astype(np.int64) - self.offset[:, None, None]
        return float(((q < 0) | (q >= self.coder.alphabet)).mean())

    def encode_body(self, x: np.ndarray) -> bytes:
        return self.encode_symbols(self.symbols(x))

    def encode_symbols(self, symbols: np.ndarray) -> bytes:
        """The body for one sample's (h * w, L) symbols (a deployed head computes them itself)."""
        assert self.coder is not None
        symbols = np.asarray(symbols, dtype=np.int64)
        expected = (self.positions, self.shape[0])
        if symbols.shape != expected or symbols.min() < 0 or symbols.max() >= self.coder.alphabet:
            raise CodecError(f"symbols must be a {expected} array in 0..{self.coder.alphabet - 1}, got {symbols.shape}")
        return self.coder.encode(symbols)

    def decode_symbols(self, body: bytes) -> np.ndarray:
        assert self.coder is not None
        return self.coder.decode(body, self.positions)

    def decode_body(self, body: bytes) -> np.ndarray:
        assert self.offset is not None
        symbols = self.decode_symbols(body)
        return (symbols.T.reshape(self.shape) + self.offset[:, None, None]).astype(np.float32)

    def max_body_bytes(self) -> int:
        # each symbol costs at most FREQUENCY_BITS + a few bits under the floored model, plus flush words
        return self.hyper.max_body_bytes() if self.hyper else int(np.prod(self.shape)) * 4 + 64

    # --- state -------------------------------------------------------------------------------
    def arrays(self) -> dict[str, np.ndarray]:
        if not self.fitted or self.coder is None or self.offset is None:
            return {}
        if isinstance(self.coder, HyperpriorCoder):
            return {"offset": self.offset, **self.coder.state}
        return {"offset": self.offset, "counts": self.coder.counts}

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        offset, counts = arrays.get("offset"), arrays.get("counts")
        latent = self.shape[0]
        if any(k in arrays for k in HYPER_KEYS):
            if offset is None or offset.shape != (latent,) or (offset != -LATENT_BOUND).any():
                raise CodecError(f"hyperprior bottleneck state needs 'offset' ({latent},) of -{LATENT_BOUND}")
            self.offset = offset.astype(np.int64)
            self.coder = HyperpriorCoder(arrays, (self.shape[0], self.shape[1], self.shape[2]))
            self.fitted = True
            self.__dict__.pop("_hash_cache", None)
            return
        if offset is None or offset.shape != (latent,) or counts is None or counts.ndim != 2:
            raise CodecError(f"bottleneck codec state needs 'offset' ({latent},) and 'counts' ({latent}, R)")
        if counts.shape[0] != latent or not 2 <= counts.shape[1] <= _MAX_ALPHABET:
            raise CodecError(f"bottleneck 'counts' must be ({latent}, 2..{_MAX_ALPHABET}), got {counts.shape}")
        self.offset = offset.astype(np.int64)
        self.coder = AnsCoder(counts.astype(np.int64))
        self.fitted = True
        self.__dict__.pop("_hash_cache", None)  # the state changed: so does its hash
