"""Codecs for the activation at a split 1 <= k <= n: blocked PCA + quantization + entropy coding,
and the no-PCA references (float16, or b-bit quantization of the raw channels).

Pipeline of :class:`FeatureCodec`: vectors (see _blocks) -> subtract the calib mean -> project on
the first ``components`` principal directions (fitted on calib with scikit-learn; ``components:
null`` skips PCA and quantizes the raw values) -> uniform ``bits``-bit quantization per component,
with the range fitted on calib (the 0.1 and 99.9 percentiles; values outside are clipped and
counted) -> an entropy coder (``huffman``, ``ans``, ``ctx``: context-adaptive ANS, see _context) or
``raw`` fixed-width bit packing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from optimizer.codecs._base import ACTIVATION, Codec
from optimizer.codecs._blocks import blocks_per_sample, from_vectors, to_vectors, vector_size
from optimizer.codecs._coders import ENTROPY_CODERS
from optimizer.codecs._entropy import EntropyCoder
from optimizer.codecs._errors import CodecError
from optimizer.codecs._fit import Calib, FitContext, Site, as_calib
from optimizer.codecs._options import CodecOptions, Suggester
from optimizer.codecs._pca import PrincipalBasis
from optimizer.codecs._work import QUANTIZE_OPS, Work

if TYPE_CHECKING:
    from torch import nn

    from optimizer.config import Reader

__all__ = ["FeatureCodec", "PcaChoices", "PcaOptions"]

GEOMETRIES = ("channel", "tile")


@dataclass(frozen=True)
class PcaChoices:
    geometry: tuple[str, ...]
    tile: int
    components: tuple[int, ...]
    bits: tuple[int, ...]
    coders: tuple[str, ...]


class PcaOptions(CodecOptions):
    """``pca: {geometry: [channel, tile], tile: 2, components: [...], bits: [...], coders: [...]}``"""

    section = "pca"
    trial_keys = ("geometry", "components", "bits", "coder")

    def parse(self, reader: Reader) -> PcaChoices:
        reader.check_keys({"geometry", "components", "bits", "coders"}, frozenset({"tile"}))
        bits = reader.values("bits", int, minimum=1)
        if max(bits) > 16:
            raise reader.error(f"values must be <= 16, got {max(bits)}", "bits")
        tile = int(reader.number("tile", 1, strict=False)) if "tile" in reader.data else 2
        coders = reader.values("coders", str, tuple(ENTROPY_CODERS))
        return PcaChoices(
            reader.values("geometry", str, GEOMETRIES), tile, reader.values("components", int, minimum=1), bits, coders
        )

    def suggest(self, trial: Suggester, choices: PcaChoices, site: Site) -> dict[str, Any]:
        geometry = trial.suggest_categorical("geometry", list(choices.geometry))
        return {
            "geometry": geometry,
            "tile": choices.tile if geometry == "tile" else 1,
            "components": trial.suggest_categorical("components", list(choices.components)),
            "bits": trial.suggest_categorical("bits", list(choices.bits)),
            "coder": trial.suggest_categorical("coder", list(choices.coders)),
        }

    def grid(self, choices: PcaChoices, site: Site) -> list[dict[str, Any]]:
        return [
            {"geometry": g, "components": c, "bits": b, "coder": coder}
            for g in choices.geometry
            for c in choices.components
            for b in choices.bits
            for coder in choices.coders
        ]


class FeatureCodec(Codec):
    kind = "pca"
    place = ACTIVATION
    options = PcaOptions()

    def __init__(self, params: dict[str, Any], shape: tuple[int, ...]) -> None:
        super().__init__(params, shape)
        # The (C, H, W) the blocks are cut from: a vector (C,) (a split after pooling and flattening)
        # is C channels at one position.
        self.layout = self.shape if len(self.shape) != 1 else (self.shape[0], 1, 1)
        self.geometry = str(params.get("geometry", "channel"))
        self.tile = int(params.get("tile", 1)) if self.geometry == "tile" else 1
        self.components = params.get("components")
        self.bits = int(params["bits"])
        self.coder_name = str(params.get("coder", "ans"))
        self._check(self.layout)
        self.mean = self.basis = self.lo = self.step = None  # type: np.ndarray | None
        self.coder: EntropyCoder | None = None

    def _check(self, shape: tuple[int, ...]) -> None:
        if len(shape) != 3:
            raise CodecError(f"feature codecs encode (C, H, W) activations or (C,) vectors, got shape {shape}")
        if self.geometry not in ("channel", "tile") or self.tile < 1:
            raise CodecError(f"geometry must be 'channel' or 'tile' (tile >= 1), got {self.geometry}/{self.tile}")
        if not 1 <= self.bits <= 16:
            raise CodecError(f"bits must be in 1..16, got {self.bits}")
        size = vector_size(shape, self.geometry, self.tile)
        if self.components is not None and not 1 <= int(self.components) <= size:
            raise CodecError(f"components must be in 1..{size} for vectors of {size} values, got {self.components}")
        if self.coder_name not in (*ENTROPY_CODERS, "raw"):
            raise CodecError(f"coder must be one of {', '.join([*ENTROPY_CODERS, 'raw'])}, got {self.coder_name!r}")
        most = ENTROPY_CODERS[self.coder_name].max_bits if self.coder_name in ENTROPY_CODERS else 16
        if self.bits > most:
            raise CodecError(f"the {self.coder_name} coder takes at most {most} bits, got {self.bits}; use fewer bits")

    @classmethod
    def canonical_params(cls, params: dict[str, Any], shape: tuple[int, ...]) -> dict[str, Any]:
        """Components beyond the vector size mean all of them."""
        out = dict(params)
        if out.get("components") is not None and len(shape) in (1, 3):
            layout = shape if len(shape) == 3 else (shape[0], 1, 1)
            size = vector_size(layout, str(out.get("geometry", "channel")), int(out.get("tile", 1)))
            out["components"] = min(int(out["components"]), size)
        return out

    @property
    def width(self) -> int:
        """Values per block after the transform."""
        return (
            int(self.components) if self.components is not None else vector_size(self.layout, self.geometry, self.tile)
        )

    @property
    def grid(self) -> tuple[int, int]:
        """Block positions per sample as (rows, cols), in the raster order of the symbols."""
        _, h, w = self.layout
        rows, cols = -(-h // self.tile), -(-w // self.tile)
        return rows, cols

    # --- costs -------------------------------------------------------------------------------
    def _projection(self) -> tuple[int, dict[str, int], int]:
        blocks = blocks_per_sample(self.layout, self.geometry, self.tile)
        size = vector_size(self.layout, self.geometry, self.tile)
        macs = {"pointwise": blocks * self.width * size} if self.components is not None else {}
        return blocks, macs, int(bool(macs))

    def device_work(self, sample_shape: tuple[int, ...]) -> Work:
        """Mean subtraction and projection, quantization, then the coder over every symbol."""
        blocks, macs, layers = self._projection()
        symbols = blocks * self.width
        size = vector_size(self.layout, self.geometry, self.tile)
        units, columns = self._coding_units(symbols)
        return Work(macs, layers, blocks * size + QUANTIZE_OPS * symbols, units, columns=columns)

    def server_work(self, sample_shape: tuple[int, ...]) -> Work:
        blocks, macs, layers = self._projection()
        symbols = blocks * self.width
        size = vector_size(self.layout, self.geometry, self.tile)
        units, columns = self._coding_units(symbols)
        return Work(macs, layers, 2 * symbols + blocks * size, units, columns=columns)

    def _coding_units(self, symbols: int) -> tuple[dict[str, int], dict[str, int]]:
        """(units, columns) of the entropy coder. ``ctx`` builds a probability row of 2**bits values
        per symbol (``ctx_pmf``, values) and decodes in a fixed number of steps whatever the number
        of components (so it counts no columns); the static coders count their columns."""
        if self.coder_name == "ctx":
            return {"ctx": symbols, "ctx_pmf": symbols << self.bits}, {}
        return {self.coder_name: symbols}, {self.coder_name: self.width}

    # --- transform ---------------------------------------------------------------------------
    def _project(self, x: np.ndarray) -> np.ndarray:
        v = to_vectors(x.astype(np.float32, copy=False).reshape(-1, *self.layout), self.geometry, self.tile)
        return (v - self.mean) @ self.basis.T if self.basis is not None else v

    def _unproject(self, coeffs: np.ndarray, n: int) -> np.ndarray:
        v = coeffs @ self.basis + self.mean if self.basis is not None else coeffs
        return from_vectors(v.astype(np.float32), self.layout, self.geometry, self.tile).reshape(n, *self.shape)

    def quantize(self, coeffs: np.ndarray) -> np.ndarray:
        q = np.rint((coeffs - self.lo) / self.step)
        return np.clip(q, 0, (1 << self.bits) - 1).astype(np.int64)

    def clipped_fraction(self, x: np.ndarray) -> float:
        """Share of one sample's coefficients that fall outside the calib range and get clipped."""
        q = np.rint((self._project(x[None]) - self.lo) / self.step)
        return float(((q < 0) | (q > (1 << self.bits) - 1)).mean())

    def dequantize(self, symbols: np.ndarray) -> np.ndarray:
        return (self.lo + symbols * self.step).astype(np.float32)

    def fit(
        self,
        calib: Calib | np.ndarray | None = None,
        context: FitContext | None = None,
        basis: PrincipalBasis | None = None,
    ) -> FeatureCodec:
        """Fit PCA, quantizer ranges and the entropy model on calib activations (N, C, H, W).

        The principal directions are shared through ``context`` by every codec fitted at the same
        split and geometry (or given as ``basis``): one eigendecomposition serves every component
        count, bit width and coder."""
        calib, context = as_calib(calib), context or FitContext()
        size = vector_size(self.layout, self.geometry, self.tile)
        if basis is None or not basis.matches(self.geometry, self.tile, size):
            basis = self._basis(calib, context)
        if self.components is not None:
            m = int(self.components)
            self.mean, self.basis = basis.mean, basis.directions[:m]
            lo, hi = basis.ranges(m)
            coeffs = basis.coefficients(m) if self.coder_name != "raw" else None
        else:
            self.mean, self.basis = np.zeros(size, np.float32), None
            lo, hi = basis.raw_ranges()
            coeffs = basis.vectors
        self.lo = lo.astype(np.float32)
        self.step = np.maximum((hi - lo) / ((1 << self.bits) - 1), 1e-8).astype(np.float32)
        if coeffs is not None and self.coder_name != "raw":
            coder = ENTROPY_CODERS[self.coder_name]
            self.coder = coder.fit(self.quantize(coeffs), 1 << self.bits, grid=self.grid)
        self.fitted = True
        return self

    def _basis(self, calib: Calib, context: FitContext) -> PrincipalBasis:
        def make() -> PrincipalBasis:
            samples = calib.activations()
            return PrincipalBasis(samples.reshape(len(samples), *self.layout), self.geometry, self.tile, context.seed)

        if context.site is None:
            return make()
        return context.cached(("pca-basis", context.site, self.geometry, self.tile), make)  # type: ignore[no-any-return]

    # --- transforms --------------------------------------------------------------------------
    def device_graph(self) -> nn.Module:
        from optimizer.codecs._graphs import PcaDevice

        return PcaDevice(self)

    def server_graph(self) -> nn.Module:
        from optimizer.codecs._graphs import PcaServer

        return PcaServer(self)

    def symbols_example(self) -> np.ndarray:
        return np.zeros((blocks_per_sample(self.layout, self.geometry, self.tile), self.width), np.int32)

    def values(self, symbols: np.ndarray) -> np.ndarray:
        """Dequantization and the inverse projection: one sample's (blocks, width) symbols -> (C, H, W)."""
        return self._unproject(self.dequantize(np.asarray(symbols, dtype=np.int64)), 1)[0]

    # --- payload body ------------------------------------------------------------------------
    def symbols(self, x: np.ndarray) -> np.ndarray:
        """The integer symbols of one sample (blocks, width): what the entropy coder sees."""
        return self.quantize(self._project(np.asarray(x)[None]))

    def encode_symbols(self, symbols: np.ndarray) -> bytes:
        """The body for one sample's (blocks, width) symbols; a deployed head computes the symbols
        itself (see optimizer.deploy) and calls this, so its payloads are the codec's, byte for byte."""
        symbols = np.asarray(symbols, dtype=np.int64)
        expected = (blocks_per_sample(self.layout, self.geometry, self.tile), self.width)
        if symbols.shape != expected or symbols.min() < 0 or symbols.max() >= 1 << self.bits:
            raise CodecError(f"symbols must be a {expected} array of {self.bits}-bit values, got {symbols.shape}")
        if self.coder is None:
            bits = ((symbols[..., None] >> np.arange(self.bits - 1, -1, -1)) & 1).astype(np.uint8)
            return np.packbits(bits.ravel()).tobytes()
        return self.coder.encode(symbols)

    def decode_symbols(self, body: bytes) -> np.ndarray:
        """A body -> its (blocks, width) integer symbols (the inverse of :meth:`encode_symbols`)."""
        n_blocks = blocks_per_sample(self.layout, self.geometry, self.tile)
        if self.coder is None:
            need = -(-n_blocks * self.width * self.bits // 8)
            if len(body) != need:
                raise CodecError(f"raw body is {len(body)} bytes, {need} expected")
            bits = np.unpackbits(np.frombuffer(body, np.uint8))[: n_blocks * self.width * self.bits]
            weights = 1 << np.arange(self.bits - 1, -1, -1)
            symbols = (bits.reshape(n_blocks, self.width, self.bits) * weights).sum(-1)
            return symbols  # type: ignore[no-any-return]
        return self.coder.decode(body, n_blocks)

    def max_body_bytes(self) -> int:
        n_blocks = blocks_per_sample(self.layout, self.geometry, self.tile)
        # Huffman codes are at most 15 bits, ANS about 16 bits per symbol, ctx 24 (constriction's
        # precision: its rarest symbol's cost); plus the flush words.
        bits = ENTROPY_CODERS[self.coder_name].max_symbol_bits if self.coder_name in ENTROPY_CODERS else 16
        return -(-n_blocks * self.width * bits // 8) + 64

    # --- state -------------------------------------------------------------------------------
    def arrays(self) -> dict[str, np.ndarray]:
        if not self.fitted:
            return {}
        assert self.mean is not None and self.lo is not None and self.step is not None
        out = {"mean": self.mean, "lo": self.lo, "step": self.step}
        if self.basis is not None:
            out["basis"] = self.basis
        if self.coder is not None:
            out.update(self.coder.state())
        return out

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        size, width = vector_size(self.layout, self.geometry, self.tile), self.width
        expect: dict[str, tuple[int, ...]] = {"mean": (size,), "lo": (width,), "step": (width,)}
        if self.components is not None:
            expect["basis"] = (width, size)
        if self.coder_name != "raw":
            expect.update(ENTROPY_CODERS[self.coder_name].state_shapes(width, 1 << self.bits))
        for name, shape in expect.items():
            if name not in arrays or arrays[name].shape != shape:
                raise CodecError(f"codec state array {name!r} missing or not of shape {shape}")
        self.mean, self.lo, self.step = (arrays[k].astype(np.float32) for k in ("mean", "lo", "step"))
        self.basis = arrays["basis"].astype(np.float32) if "basis" in arrays else None
        if self.coder_name != "raw":
            self.coder = ENTROPY_CODERS[self.coder_name].from_state(arrays, self.grid)
        self.fitted = True
