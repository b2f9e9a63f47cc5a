"""Building codecs from parameters, and codec state files checked on load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from optimizer.codecs._base import Codec, load_codec_state, save_codec_state
from optimizer.codecs._bottleneck import BottleneckCodec
from optimizer.codecs._errors import CodecError
from optimizer.codecs._feature import FeatureCodec, Float16Codec
from optimizer.codecs._image import ClassIdCodec, ImageCodec

__all__ = ["CODECS", "load_codec", "make_codec", "save_codec"]

CODECS: dict[str, type[Codec]] = {
    c.kind: c for c in (FeatureCodec, Float16Codec, ImageCodec, ClassIdCodec, BottleneckCodec)
}


def make_codec(params: dict[str, Any], shape: tuple[int, ...]) -> Codec:
    """A codec from JSON-able params (``{"kind": "pca", "components": 8, "bits": 4, ...}``)."""
    kind = params.get("kind")
    if kind not in CODECS:
        raise CodecError(f"unknown codec kind {kind!r}; choose one of {', '.join(CODECS)}")
    return CODECS[kind]({k: v for k, v in params.items() if k != "kind"}, shape)


def save_codec(codec: Codec, path: Path) -> None:
    save_codec_state(codec, path)


def load_codec(path: Path) -> Codec:
    """Rebuild a codec from its state file; a file whose content no longer matches its recorded
    state hash (edited, truncated, swapped arrays) is refused."""
    meta, arrays = load_codec_state(path)
    codec = make_codec({"kind": meta["kind"], **meta["params"]}, tuple(meta["shape"]))
    codec.load_arrays(arrays)
    if codec.state_hash().hex() != meta["state_hash"]:
        raise CodecError(f"codec state {path} does not match its recorded hash: the file was altered; re-export it")
    return codec
