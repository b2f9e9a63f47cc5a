"""The codec contract: one interface for every codec (PCA + quantizer, float16, images, the class id,
the learned bottleneck), and codec state files without pickle.

A codec codes one sample at one **place** of the model: the input image (``INPUT``, k = 0), the
activation at a split point (``ACTIVATION``), or the output (``OUTPUT``: the class id, at the last
split). Built from JSON-able ``params`` and the ``shape`` of one sample at its place, it has:

- ``fit(calib, context)``: its state from the calib split (``calib.activations()`` runs the head
  only for the codecs that call it; ``context`` says where it codes and shares work between fits);
- a **device transform** and a **server transform**: ``symbols`` (one sample -> the symbols its
  entropy model codes) and ``values`` (symbols -> what the tail takes), batched as ``to_symbols`` /
  ``from_symbols``; and the same as torch modules, ``device_graph`` / ``server_graph``, which the
  deployed head.onnx and tail.onnx fold in (imported lazily: the deployed halves need no torch);
- an **entropy model**: ``encode_symbols`` (one sample's symbols -> body) and ``decode_symbols``
  (body -> symbols; a malformed body raises CodecError, and any other exception is a bug);
- its **costs**: ``device_work`` / ``server_work`` in countable units (see _work);
- its **state** as named numpy arrays, hashed (``state_hash``) and saved without pickle.

The payload is the wire header (tag byte, body length; see _wire) + the body, for every codec.
Class-level, each codec names its place and ``options``: its section of a search space and the
trial parameters it adds (see _options). Nothing outside optimizer.codecs dispatches on a codec's
kind; the traits below say what the report and the search need to know.
"""

from __future__ import annotations

import abc
import hashlib
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from optimizer.codecs._errors import CodecError
from optimizer.codecs._fit import Calib, FitContext
from optimizer.codecs._wire import pack, unpack
from optimizer.codecs._work import Work

if TYPE_CHECKING:
    from torch import nn

    from optimizer.codecs._options import CodecOptions

__all__ = ["ACTIVATION", "INPUT", "OUTPUT", "PLACES", "Codec", "load_codec_state", "save_codec_state"]

INPUT, ACTIVATION, OUTPUT = "input", "activation", "output"
PLACES = (INPUT, ACTIVATION, OUTPUT)


class Codec(abc.ABC):
    """fit on calib; a device and a server transform; symbols <-> body; costs; state as arrays."""

    kind: ClassVar[str]
    place: ClassVar[str]  # INPUT, ACTIVATION or OUTPUT
    options: ClassVar[CodecOptions]
    # Traits for the report (what it draws where); descriptive only, never a dispatch key.
    uncompressed: ClassVar[bool] = False  # the reference that sends the activation as it is
    learned: ClassVar[bool] = False  # trained with the model (its own weights)

    def __init__(self, params: dict[str, Any], shape: tuple[int, ...]) -> None:
        self.params = dict(params)
        self.shape = tuple(int(d) for d in shape)
        self.fitted = False

    @classmethod
    def canonical_params(cls, params: dict[str, Any], shape: tuple[int, ...]) -> dict[str, Any]:
        """The parameters as the codec will use them at an activation of ``shape`` (two parameter
        sets that make the same codec become equal here, so a study scores it once)."""
        return dict(params)

    # --- fit ---------------------------------------------------------------------------------
    def fit(self, calib: Calib | np.ndarray | None = None, context: FitContext | None = None) -> Codec:
        """Learn the state from the calib split (most codecs have nothing to learn)."""
        self.fitted = True
        return self

    # --- transforms --------------------------------------------------------------------------
    def symbols(self, x: np.ndarray) -> np.ndarray:
        """The device transform of one sample: what the entropy model codes."""
        return np.asarray(x)

    def values(self, symbols: np.ndarray) -> np.ndarray:
        """The server transform of one sample's symbols: what the tail takes (a decoded image at INPUT,
        logits at OUTPUT)."""
        return np.asarray(symbols)

    def to_symbols(self, batch: np.ndarray | list[np.ndarray]) -> list[np.ndarray]:
        """The device transform of a batch, one array per sample."""
        self._require_fitted()
        return [self.symbols(x) for x in batch]

    def from_symbols(self, symbols: list[np.ndarray]) -> list[np.ndarray] | np.ndarray:
        """The server transform of a batch (stacked where the samples share a shape)."""
        return np.stack([self.values(s) for s in symbols]) if symbols else np.zeros((0, *self.shape), np.float32)

    def device_graph(self) -> nn.Module | None:
        """The device transform as a torch module after the head (activation -> symbols), or None
        where the head's own output is the symbols' source (see ``head_output``)."""
        return None

    def server_graph(self) -> nn.Module | None:
        """The server transform as a torch module before the tail (symbols -> activation), or None."""
        return None

    def symbols_example(self) -> np.ndarray:
        """One sample's symbols as the device graph outputs them (shape and dtype; zeros)."""
        return np.zeros(self.shape, np.float32)

    # --- entropy model -----------------------------------------------------------------------
    @property
    def exact(self) -> bool:
        """Whether the entropy model gives back exactly the symbols it coded (a lossy image format
        does not: its loss is the codec's only one)."""
        return True

    @abc.abstractmethod
    def encode_symbols(self, symbols: np.ndarray) -> bytes:
        """One sample's symbols -> the body."""

    @abc.abstractmethod
    def decode_symbols(self, body: bytes) -> np.ndarray:
        """A body -> one sample's symbols; CodecError if the body is malformed (nothing else)."""

    @abc.abstractmethod
    def max_body_bytes(self) -> int:
        """The largest body this codec ever produces or accepts (bounds decoder allocation)."""

    # --- payloads ----------------------------------------------------------------------------
    def check_input(self, x: np.ndarray) -> None:
        """CodecError unless ``x`` is one sample this codec encodes (image codecs: any valid image)."""
        if tuple(x.shape) != self.shape:
            raise CodecError(f"{self.kind} codec encodes shape {self.shape}, got {tuple(x.shape)}")

    def wrap(self, body: bytes, tag: int = 0) -> bytes:
        """A body -> the payload: the wire header (tag byte, body length) + body. ``tag``: the
        configuration tag (0..63) of the bundle configuration this codec serves."""
        return pack(tag, body)

    def unwrap(self, payload: bytes) -> bytes:
        """The payload -> its body, after the header checks; CodecError otherwise."""
        self._require_fitted()
        return unpack(payload, self.max_body_bytes())[1]

    def encode(self, x: np.ndarray, tag: int = 0) -> bytes:
        """One sample -> the payload; ``len()`` of it is what crosses the network."""
        self._require_fitted()
        x = np.asarray(x)
        self.check_input(x)
        return self.wrap(self.encode_symbols(self.symbols(x)), tag)

    def decode(self, payload: bytes) -> np.ndarray:
        """The payload -> one sample as the tail takes it, or CodecError."""
        return self.values(self.decode_symbols(self.unwrap(payload)))

    # --- costs -------------------------------------------------------------------------------
    def device_work(self, sample_shape: tuple[int, ...]) -> Work:
        """What the device transform and encoding one sample of ``sample_shape`` cost (see _work)."""
        return Work()

    def server_work(self, sample_shape: tuple[int, ...]) -> Work:
        """What decoding that sample's payload and the server transform cost (see _work)."""
        return Work()

    # --- state -------------------------------------------------------------------------------
    def arrays(self) -> dict[str, np.ndarray]:
        """The fitted state as named arrays (empty for codecs with nothing to fit)."""
        return {}

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Restore the fitted state; CodecError if the arrays do not fit ``params``."""
        self.fitted = True

    def state_hash(self) -> bytes:
        digest = hashlib.sha256(
            json.dumps({"kind": self.kind, "params": self.params, "shape": self.shape}, sort_keys=True).encode()
        )
        for name, value in sorted(self.arrays().items()):
            digest.update(name.encode() + str(value.dtype).encode() + str(value.shape).encode())
            digest.update(np.ascontiguousarray(value).tobytes())
        return digest.digest()

    def _require_fitted(self) -> None:
        if not self.fitted:
            raise CodecError(f"{self.kind} codec is not fitted; call fit(calib) or load its state first")


def save_codec_state(codec: Codec, path: Path) -> None:
    """Write ``params``, ``shape`` and the arrays to an ``.npz`` (no pickle) with a digest."""
    meta = {
        "kind": codec.kind,
        "params": codec.params,
        "shape": list(codec.shape),
        "state_hash": codec.state_hash().hex(),
    }
    arrays = {f"a_{k}": v for k, v in codec.arrays().items()}
    buffer = io.BytesIO()
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    path.write_bytes(buffer.getvalue())


def load_codec_state(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read a state file written by :func:`save_codec_state` (``allow_pickle=False``)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(bytes(npz["meta"]).decode())
            arrays = {k[2:]: npz[k] for k in npz.files if k.startswith("a_")}
    except (OSError, ValueError, KeyError, UnicodeDecodeError) as exc:
        raise CodecError(f"codec state {path} is unreadable ({exc}); re-export it") from exc
    if not isinstance(meta, dict) or not {"kind", "params", "shape", "state_hash"} <= set(meta):
        raise CodecError(f"codec state {path} lacks its metadata; re-export it")
    return meta, arrays
