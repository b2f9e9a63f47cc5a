"""The learned bottleneck (Matsubara et al.): a trained encoder after the head, its latent entropy
coded under the trained prior, a trained decoder before the tail.

Device transform: the activation (float16-rounded, as the study's cached activations) -> encoder ->
rounded latent (L, h, w) -> symbols (h * w, L), each channel offset into its tabulated range
``offset[c] .. offset[c] + R - 1`` and clamped to it. Server transform: symbols -> latent ->
decoder -> the activation the tail takes. The neural parts are the trained bottleneck's
(optimizer.models: ``LearnedBottleneck``), loaded from ``params["file"]`` after its SHA-256 is
checked; they run in torch for the search and inside head.onnx / tail.onnx when deployed.

Entropy model, factorized: the trained prior tabulated per latent channel (the prior's tail mass
beyond the range folded into the edge bins), integer frequencies, ANS through constriction, one
model per channel, positions in raster order; the state is ``offset`` and ``counts``. Trained with
a hyperprior (``entropy="hyperprior"``): ``HyperpriorCoder`` (optimizer.codecs._hyperprior), whose
state holds the side nets' weights and the side prior's tables. ``params`` name the weight file and
its SHA-256, so the state hash - pinned by a bundle's manifest - binds the codec to its bottleneck.

Search spaces list trained bottlenecks under ``bottleneck: {files: [...]}``; each is offered only at
the model, input size and split point its card names (``BottleneckOptions.variants``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from optimizer.codecs._base import ACTIVATION, Codec
from optimizer.codecs._bottleneck_options import BottleneckChoice, BottleneckOptions
from optimizer.codecs._entropy import AnsCoder
from optimizer.codecs._errors import CodecError
from optimizer.codecs._fit import Calib, FitContext
from optimizer.codecs._hyperprior import HYPER_KEYS, LATENT_BOUND, HyperpriorCoder
from optimizer.codecs._work import Work

if TYPE_CHECKING:
    from torch import nn

    from optimizer.models import LoadedBottleneck

__all__ = ["BottleneckChoice", "BottleneckCodec", "BottleneckOptions", "frequencies_of"]

FREQUENCY_BITS = 20  # tabulated probabilities -> integer frequencies (each at least 1)
_MAX_ALPHABET = 4096
_BATCH = 250


def frequencies_of(pmf: np.ndarray) -> np.ndarray:
    """Probabilities (L, R) -> positive integer frequencies summing to about 2**FREQUENCY_BITS."""
    pmf = np.asarray(pmf, dtype=np.float64)
    return np.maximum(1, np.rint(pmf * (1 << FREQUENCY_BITS))).astype(np.int64)


class BottleneckCodec(Codec):
    kind = "bottleneck"
    place = ACTIVATION
    options = BottleneckOptions()
    learned = True

    def __init__(self, params: dict[str, Any], shape: tuple[int, ...]) -> None:
        super().__init__(params, shape)
        if len(self.shape) != 3 or min(self.shape) < 1:
            raise CodecError(f"the bottleneck codec codes (C, H, W) activations, got shape {self.shape}")
        if not isinstance(params.get("file"), str):
            raise CodecError("bottleneck codec params need 'file', the trained bottleneck's weight file")
        # NOTE: bundles written before the codec contract kept the latent's shape as the codec's shape
        # (and no latent_shape array); they only ever code symbols, which is all they need it for.
        self.latent_shape = self.shape
        self.offset: np.ndarray | None = None
        self.coder: AnsCoder | HyperpriorCoder | None = None
        self._loaded: LoadedBottleneck | None = None

    @property
    def positions(self) -> int:
        return self.latent_shape[1] * self.latent_shape[2]

    @property
    def hyper(self) -> HyperpriorCoder | None:
        return self.coder if isinstance(self.coder, HyperpriorCoder) else None

    # --- the trained bottleneck --------------------------------------------------------------
    def bottleneck(self, context: FitContext | None = None) -> LoadedBottleneck:
        """The trained bottleneck ``params`` name, its SHA-256 checked (loaded once per context)."""
        if self._loaded is None:
            path = str(self.params["file"])
            context = context or FitContext()
            self._loaded = context.cached(("bottleneck", path), lambda: _load(path))
            expected = self.params.get("weights_sha256", self._loaded.sha256)
            if expected != self._loaded.sha256:
                from optimizer.errors import UserError

                raise UserError(f"bottleneck {path} changed since the study (SHA-256 differs); re-run the study")
        return self._loaded

    def fit(self, calib: Calib | np.ndarray | None = None, context: FitContext | None = None) -> BottleneckCodec:
        """The entropy model from the trained prior, tabulated (with a hyperprior: its side nets and
        the side latent's prior, tabulated); nothing is learned from calib."""
        from optimizer.models import hyperprior_arrays, prior_tables

        module = self.bottleneck(context).module
        latent_shape = np.asarray(module.spec.latent_shape, dtype=np.int64)
        if module.hyper is not None:
            z_offset, z_pmf = prior_tables(module.hyper.side_prior)
            return self.fit_hyperprior(hyperprior_arrays(module.hyper), z_offset, z_pmf, latent_shape)
        assert module.prior is not None
        return self.fit_prior(*prior_tables(module.prior), latent_shape)

    def fit_prior(self, offset: np.ndarray, pmf: np.ndarray, latent_shape: np.ndarray | None = None) -> BottleneckCodec:
        """Take a tabulated factorized prior: offsets (L,), probabilities (L, R)."""
        pmf = np.asarray(pmf, dtype=np.float64)
        if pmf.shape[1:] == (1,):  # every channel deterministic: ANS needs an alphabet of two
            pmf = np.pad(pmf, ((0, 0), (0, 1)))
        arrays = {"offset": np.asarray(offset, dtype=np.int64), "counts": frequencies_of(pmf)}
        self.load_arrays(arrays | _shape_array(latent_shape))
        return self

    def fit_hyperprior(
        self,
        nets: dict[str, np.ndarray],
        z_offset: np.ndarray,
        z_pmf: np.ndarray,
        latent_shape: np.ndarray | None = None,
    ) -> BottleneckCodec:
        """Take a hyperprior's side nets (``models.hyperprior_arrays``) and its side prior tabulated
        (``models.prior_tables``: offsets (Z,), probabilities (Z, R))."""
        z_pmf = np.asarray(z_pmf, dtype=np.float64)
        if z_pmf.shape[1:] == (1,):
            z_pmf = np.pad(z_pmf, ((0, 0), (0, 1)))
        channels = int(latent_shape[0]) if latent_shape is not None else self.shape[0]
        offset = np.full(channels, -LATENT_BOUND, dtype=np.int64)
        side = {"z_offset": np.asarray(z_offset, dtype=np.int64), "z_counts": frequencies_of(z_pmf)}
        self.load_arrays({"offset": offset, **nets, **side} | _shape_array(latent_shape))
        return self

    # --- transforms --------------------------------------------------------------------------
    def latent_symbols(self, latent: np.ndarray) -> np.ndarray:
        """Rounded latent (L, h, w) -> symbols (h * w, L) in 0..R-1 (out-of-range values clamped)."""
        assert self.offset is not None and self.coder is not None
        q = np.rint(np.asarray(latent, dtype=np.float64)).astype(np.int64) - self.offset[:, None, None]
        q = np.clip(q, 0, self.coder.alphabet - 1)
        return q.reshape(self.latent_shape[0], self.positions).T

    def latent_of(self, symbols: np.ndarray) -> np.ndarray:
        """Symbols (h * w, L) -> the latent (L, h, w) they code."""
        assert self.offset is not None
        return (np.asarray(symbols).T.reshape(self.latent_shape) + self.offset[:, None, None]).astype(np.float32)

    def encode_latent(self, latent: np.ndarray, tag: int = 0) -> bytes:
        """A rounded latent (L, h, w) -> its payload (the entropy model alone, without the encoder)."""
        return self.wrap(self.encode_symbols(self.latent_symbols(latent)), tag)

    def decode_latent(self, payload: bytes) -> np.ndarray:
        """A payload -> the latent (L, h, w) it codes (without the decoder); CodecError if malformed."""
        return self.latent_of(self.decode_symbols(self.unwrap(payload)))

    def clipped_fraction(self, latent: np.ndarray) -> float:
        """Share of one latent's values outside the tabulated range (coded as the nearest edge)."""
        assert self.offset is not None and self.coder is not None
        q = np.rint(latent).astype(np.int64) - self.offset[:, None, None]
        return float(((q < 0) | (q >= self.coder.alphabet)).mean())

    def latents(self, activations: np.ndarray) -> np.ndarray:
        """Activations (N, C, H, W) -> rounded latents (N, L, h, w), as the device graph computes them
        (the activation rounded to float16 first, as the study's cached activations are)."""
        import torch

        module = self.bottleneck().module
        x = torch.from_numpy(np.ascontiguousarray(activations, dtype=np.float16).astype(np.float32))
        with torch.no_grad():
            return torch.cat([module.latent(x[i : i + _BATCH]) for i in range(0, len(x), _BATCH)]).numpy()

    def to_symbols(self, batch: np.ndarray | list[np.ndarray]) -> list[np.ndarray]:
        self._require_fitted()
        return [self.latent_symbols(z) for z in self.latents(np.asarray(batch))]

    def symbols(self, x: np.ndarray) -> np.ndarray:
        return self.to_symbols(np.asarray(x)[None])[0]

    def from_symbols(self, symbols: list[np.ndarray]) -> np.ndarray:
        import torch

        module = self.bottleneck().module
        z = torch.from_numpy(np.stack([self.latent_of(s) for s in symbols]))
        with torch.no_grad():
            return torch.cat([module.decode(z[i : i + _BATCH]) for i in range(0, len(z), _BATCH)]).numpy()

    def values(self, symbols: np.ndarray) -> np.ndarray:
        return self.from_symbols([symbols])[0]  # type: ignore[no-any-return]

    def device_graph(self) -> nn.Module:
        from optimizer.codecs._bottleneck_graphs import BottleneckDevice

        return BottleneckDevice(self, self.bottleneck().module)

    def server_graph(self) -> nn.Module:
        from optimizer.codecs._bottleneck_graphs import BottleneckServer

        return BottleneckServer(self, self.bottleneck().module)

    def symbols_example(self) -> np.ndarray:
        return np.zeros((self.positions, self.latent_shape[0]), np.int32)

    # --- costs -------------------------------------------------------------------------------
    def _net_work(self, part: str) -> Work:
        """The trained encoder (device) or decoder (server): two convolutions, MACs from its card."""
        card = self.bottleneck().card
        return Work(macs={"conv": int(card[f"{part}_macs"])}, layers=2, calls=0)

    def device_work(self, sample_shape: tuple[int, ...]) -> Work:
        """The learned encoder, rounding and ANS over the latent; a hyperprior's side nets (numpy, in
        the codec) as convolutions."""
        values = int(np.prod(self.latent_shape))
        hyper = self.hyper
        if hyper is None:
            coding = Work(elementwise_ops=2 * values, units={"ans": values}, columns={"ans": self.latent_shape[0]})
        else:
            side = hyper.side * hyper.z_shape[1] * hyper.z_shape[2]
            coding = Work({"conv": hyper.encoder_macs() + hyper.macs()}, 4, 2 * values, {"ans": values + side})
        return self._net_work("encoder") + coding

    def server_work(self, sample_shape: tuple[int, ...]) -> Work:
        values = int(np.prod(self.latent_shape))
        hyper = self.hyper
        if hyper is None:
            coding = Work(elementwise_ops=values, units={"ans": values}, columns={"ans": self.latent_shape[0]})
        else:
            side = hyper.side * hyper.z_shape[1] * hyper.z_shape[2]
            coding = Work({"conv": hyper.macs()}, 2, values, {"ans": values + side})
        return self._net_work("decoder") + coding

    # --- entropy model -----------------------------------------------------------------------
    def encode_symbols(self, symbols: np.ndarray) -> bytes:
        """The body for one sample's (h * w, L) symbols (a deployed head computes them itself)."""
        assert self.coder is not None
        symbols = np.asarray(symbols, dtype=np.int64)
        expected = (self.positions, self.latent_shape[0])
        if symbols.shape != expected or symbols.min() < 0 or symbols.max() >= self.coder.alphabet:
            raise CodecError(f"symbols must be a {expected} array in 0..{self.coder.alphabet - 1}, got {symbols.shape}")
        return self.coder.encode(symbols)

    def decode_symbols(self, body: bytes) -> np.ndarray:
        self._require_fitted()
        assert self.coder is not None
        return self.coder.decode(body, self.positions)

    def max_body_bytes(self) -> int:
        # each symbol costs at most FREQUENCY_BITS + a few bits under the floored model, plus flush words
        return self.hyper.max_body_bytes() if self.hyper else int(np.prod(self.latent_shape)) * 4 + 64

    # --- state -------------------------------------------------------------------------------
    def arrays(self) -> dict[str, np.ndarray]:
        if not self.fitted or self.coder is None or self.offset is None:
            return {}
        shape = _shape_array(np.asarray(self.latent_shape)) if self.latent_shape != self.shape else {}
        if isinstance(self.coder, HyperpriorCoder):
            return {"offset": self.offset, **self.coder.state, **shape}
        return {"offset": self.offset, "counts": self.coder.counts, **shape}

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.latent_shape = _latent_shape(arrays.get("latent_shape"), self.shape)
        offset, counts = arrays.get("offset"), arrays.get("counts")
        latent = self.latent_shape[0]
        if any(k in arrays for k in HYPER_KEYS):
            if offset is None or offset.shape != (latent,) or (offset != -LATENT_BOUND).any():
                raise CodecError(f"hyperprior bottleneck state needs 'offset' ({latent},) of -{LATENT_BOUND}")
            self.offset = offset.astype(np.int64)
            self.coder = HyperpriorCoder(arrays, self.latent_shape)
            self.fitted = True
            return
        if offset is None or offset.shape != (latent,) or counts is None or counts.ndim != 2:
            raise CodecError(f"bottleneck codec state needs 'offset' ({latent},) and 'counts' ({latent}, R)")
        if counts.shape[0] != latent or not 2 <= counts.shape[1] <= _MAX_ALPHABET:
            raise CodecError(f"bottleneck 'counts' must be ({latent}, 2..{_MAX_ALPHABET}), got {counts.shape}")
        self.offset = offset.astype(np.int64)
        self.coder = AnsCoder(counts.astype(np.int64))
        self.fitted = True


def _shape_array(latent_shape: np.ndarray | None) -> dict[str, np.ndarray]:
    return {} if latent_shape is None else {"latent_shape": np.asarray(latent_shape, dtype=np.int64)}


def _latent_shape(value: np.ndarray | None, shape: tuple[int, ...]) -> tuple[int, int, int]:
    if value is None:
        return (shape[0], shape[1], shape[2])
    if value.shape != (3,) or (value < 1).any() or (value > 4096).any():
        raise CodecError(f"bottleneck 'latent_shape' must be three positive sizes, got {value!r}")
    return (int(value[0]), int(value[1]), int(value[2]))


def _load(path: str) -> LoadedBottleneck:
    from optimizer.models import load_bottleneck

    return load_bottleneck(path)
