"""The one interface every codec shares, and codec state files without pickle.

A codec is built from JSON-able ``params`` and the ``shape`` it encodes, fitted on calib data,
then turns one activation (or image) into a payload in the wire format and back. Its state is
``params`` + ``shape`` + named numpy arrays; the state hash (SHA-256 over all of them) pins a codec
state file to its bundle's manifest (payloads carry no state hash: the bundle identity is checked
per connection, see ``optimizer.protocol``).
"""

from __future__ import annotations

import abc
import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from optimizer.codecs._errors import CodecError
from optimizer.codecs._wire import pack, unpack
from optimizer.codecs._work import Work

__all__ = ["Codec", "load_codec_state", "save_codec_state"]


class Codec(abc.ABC):
    """fit on calib; encode one sample -> bytes; decode bytes -> one sample; state -> file."""

    kind: ClassVar[str]

    def __init__(self, params: dict[str, Any], shape: tuple[int, ...]) -> None:
        self.params = dict(params)
        self.shape = tuple(int(d) for d in shape)
        self.fitted = False

    # --- state -------------------------------------------------------------------------------
    @abc.abstractmethod
    def arrays(self) -> dict[str, np.ndarray]:
        """The fitted state as named arrays (empty for codecs with nothing to fit)."""

    @abc.abstractmethod
    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Restore the fitted state; raise CodecError if the arrays do not fit ``params``."""

    def state_hash(self) -> bytes:
        digest = hashlib.sha256(
            json.dumps({"kind": self.kind, "params": self.params, "shape": self.shape}, sort_keys=True).encode()
        )
        for name, value in sorted(self.arrays().items()):
            digest.update(name.encode() + str(value.dtype).encode() + str(value.shape).encode())
            digest.update(np.ascontiguousarray(value).tobytes())
        return digest.digest()

    # --- payloads ----------------------------------------------------------------------------
    @abc.abstractmethod
    def encode_body(self, x: np.ndarray) -> bytes: ...

    @abc.abstractmethod
    def decode_body(self, body: bytes) -> np.ndarray:
        """A body -> one sample (of ``shape``; image codecs: of the size the image file declares)."""

    @abc.abstractmethod
    def max_body_bytes(self) -> int:
        """The largest body this codec ever produces or accepts (bounds decoder allocation)."""

    # --- costs -------------------------------------------------------------------------------
    def device_work(self, sample_shape: tuple[int, ...]) -> Work:
        """What encoding one sample of ``sample_shape`` costs the device (see ``_work``)."""
        return Work()

    def server_work(self, sample_shape: tuple[int, ...]) -> Work:
        """What decoding that sample's payload costs the server (see ``_work``)."""
        return Work()

    def check_input(self, x: np.ndarray) -> None:
        """CodecError unless ``x`` is one sample this codec encodes (image codecs: any valid image)."""
        if tuple(x.shape) != self.shape:
            raise CodecError(f"{self.kind} codec encodes shape {self.shape}, got {tuple(x.shape)}")

    def encode(self, x: np.ndarray, tag: int = 0) -> bytes:
        """One sample -> the payload (header + body); ``len()`` of it is what crosses the network.
        ``tag``: the configuration tag (0..63) of the bundle configuration this codec serves."""
        self._require_fitted()
        x = np.asarray(x)
        self.check_input(x)
        return self.wrap(self.encode_body(x), tag)

    def wrap(self, body: bytes, tag: int = 0) -> bytes:
        """A body this codec made -> the payload: the wire header (tag byte, body length) + body."""
        return pack(tag, body)

    def unwrap(self, payload: bytes) -> bytes:
        """The payload -> its body, after the header checks; CodecError otherwise."""
        self._require_fitted()
        return unpack(payload, self.max_body_bytes())[1]

    def decode(self, payload: bytes) -> np.ndarray:
        """The payload -> one sample of the codec's shape, or CodecError (never anything else)."""
        out = self.guarded(self.decode_body, self.unwrap(payload))
        if self.shape and tuple(out.shape) != self.shape:
            raise CodecError(f"decoded shape {tuple(out.shape)} differs from the codec's {self.shape}")
        return out

    def guarded(self, decode: Callable[..., np.ndarray], *args: Any) -> np.ndarray:
        """Run a body decoder so that whatever goes wrong surfaces as CodecError (never a crash)."""
        try:
            return decode(*args)
        except CodecError:
            raise
        except Exception as exc:
            raise CodecError(f"{self.kind} body cannot be decoded: {type(exc).__name__}: {exc}") from exc

    def _hash(self) -> bytes:
        cached = getattr(self, "_hash_cache", None)
        if cached is None:
            cached = self.state_hash()
            self._hash_cache = cached
        return cached

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
