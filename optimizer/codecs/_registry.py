"""The codec registry, building codecs from parameters, and codec state files checked on load.

Adding a codec is one module (a ``Codec`` subclass with its ``options``) plus one line here. The
order matters once: it is the order of the choices of a search's ``codec`` parameter, which studies
keep (Optuna refuses a categorical whose choices change), so new codecs go at the end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from optimizer.codecs._base import Codec, load_codec_state, save_codec_state
from optimizer.codecs._bottleneck import BottleneckCodec
from optimizer.codecs._class_id import ClassIdCodec
from optimizer.codecs._errors import CodecError
from optimizer.codecs._feature import FeatureCodec
from optimizer.codecs._float16 import Float16Codec
from optimizer.codecs._image import ImageCodec
from optimizer.codecs._uniform import UniformCodec

__all__ = ["CODECS", "codec_class", "load_codec", "make_codec", "save_codec"]

CODECS: dict[str, type[Codec]] = {
    c.kind: c
    for c in (
        FeatureCodec,
        Float16Codec,
        ImageCodec,
        ClassIdCodec,
        BottleneckCodec,
        UniformCodec,
    )
}


def codec_class(kind: str) -> type[Codec]:
    if kind not in CODECS:
        raise CodecError(f"unknown codec kind {kind!r}; choose one of {', '.join(CODECS)}")
    return CODECS[kind]


def make_codec(params: dict[str, Any], shape: tuple[int, ...]) -> Codec:
    """A codec from JSON-able params (``{"kind": "pca", "components": 8, "bits": 4, ...}``)."""
    return codec_class(str(params.get("kind")))({k: v for k, v in params.items() if k != "kind"}, shape)


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
