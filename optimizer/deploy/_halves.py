"""The two halves of a bundle at run time: the device half (image -> payload) and the server half
(payload -> prediction). Both run their graph with onnxruntime; neither needs the study, and
neither imports torch (preprocessing is ``optimizer.imaging``'s numpy + Pillow).

The device half's payload is the codec's own: head.onnx computes the symbols (the codec's device
transform is folded into it), and the codec's entropy model (the same Python code the study used)
turns them into bytes. The server half decodes the symbols and tail.onnx does the rest (the codec's
server transform is folded into it). Which way each half goes is read from the manifest's graph
roles, never from the codec's kind; bundles written before the codec contract name the head's
output ``activation`` or ``logits`` (the device then applies the codec's transform itself) and the
tail's input ``activation`` (the server likewise).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image, UnidentifiedImageError

from optimizer.codecs import CodecError, PayloadMismatch
from optimizer.deploy._bundle import Bundle
from optimizer.errors import UserError
from optimizer.imaging import model_input
from optimizer.protocol import read_tag

__all__ = ["DeviceHalf", "Encoded", "Prediction", "ServerHalf", "load_image", "session"]

SYMBOLS, IMAGE = "symbols", "image"  # the graph roles of today's bundles
_ONNX_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int32)": np.int32}
_ONNX_TYPES |= {"tensor(int64)": np.int64, "tensor(double)": np.float64}


def session(path: Path, threads: int = 1) -> ort.InferenceSession:
    """An onnxruntime CPU session; one intra-op thread by default (servers get parallelism from requests)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def load_image(path: Path, mode: str) -> np.ndarray:
    """An image file as the device captures it (``Bundle.image_mode``): uint8 H x W (``L``) or H x W x 3 (``RGB``)."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert(mode), dtype=np.uint8)
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise UserError(f"cannot read image {path} ({exc}); give a PNG or JPEG file") from exc


@dataclass(frozen=True)
class Encoded:
    payload: bytes
    head_s: float  # preprocessing + head.onnx
    coding_s: float  # entropy coding (or the image codec) + wire header


class DeviceHalf:
    """head.onnx + the codec: an image in, the payload out."""

    def __init__(self, bundle: Bundle, threads: int = 1) -> None:
        self.bundle, self.codec = bundle, bundle.codec
        self.image_mode, self.preprocessing = bundle.image_mode, bundle.preprocessing
        path = bundle.file("head")
        self.session = session(path, threads) if path is not None else None
        self.head_gives_symbols = bundle.manifest["head"].get("output") == SYMBOLS

    def head(self, natives: Sequence[np.ndarray]) -> np.ndarray:
        """Native images -> head.onnx outputs (symbols, activations or logits), batched."""
        assert self.session is not None, "k = 0 has no head network"
        x = model_input(natives, self.bundle.input_size, self.preprocessing)
        return self.session.run(None, {"image": x})[0]  # type: ignore[no-any-return]

    def code(self, output: np.ndarray) -> bytes:
        """One sample's head output (or, at k = 0, the native image) -> the payload."""
        symbols = output if self.head_gives_symbols else self.codec.symbols(output)
        return self.codec.wrap(self.codec.encode_symbols(symbols), self.bundle.tag)

    def encode(self, native: np.ndarray) -> Encoded:
        start = time.perf_counter()
        output = native if self.session is None else self.head([native])[0]
        mid = time.perf_counter()
        payload = self.code(output)
        return Encoded(payload, mid - start, time.perf_counter() - mid)


@dataclass(frozen=True)
class Prediction:
    class_index: int
    label: str
    score: float | None  # softmax probability of the class; None at k = n + 1 (only the id was sent)


class ServerHalf:
    """The codec's decoder + tail.onnx: a payload in, a prediction out (CodecError for bad payloads)."""

    def __init__(self, bundle: Bundle, threads: int = 1) -> None:
        self.bundle, self.codec = bundle, bundle.codec
        path = bundle.file("tail")
        self.session = session(path, threads) if path is not None else None
        self.input_name = bundle.manifest["tail"]["input"]
        self.preprocessing = bundle.preprocessing
        graph_input = self.session.get_inputs()[0] if self.session is not None else None
        self.input_type = _ONNX_TYPES.get(graph_input.type, np.float32) if graph_input is not None else np.float32

    def check_tag(self, payload: bytes) -> None:
        """CodecError unless ``payload`` is format 2; PayloadMismatch unless its tag is this configuration's."""
        try:
            tag = read_tag(payload)
        except ValueError as exc:
            raise CodecError(str(exc)) from exc
        if tag != self.bundle.tag:
            raise PayloadMismatch(
                f"the payload is for configuration tag {tag}; this bundle holds only tag {self.bundle.tag}"
            )

    def symbols(self, payload: bytes) -> np.ndarray:
        """The payload's symbols, after the tag and header checks (CodecError otherwise)."""
        self.check_tag(payload)
        return self.codec.decode_symbols(self.codec.unwrap(payload))

    def tail_input(self, payload: bytes) -> np.ndarray:
        """Decode the payload into what tail.onnx takes, with a batch dimension of one."""
        symbols = self.symbols(payload)
        if self.input_name == SYMBOLS:
            return np.asarray(symbols)[None].astype(self.input_type)
        values = self.codec.values(symbols)
        if self.input_name == IMAGE:
            return model_input([values], self.bundle.input_size, self.preprocessing)  # as the study did at k = 0
        return values[None].astype(self.input_type)

    def logits(self, payload: bytes) -> np.ndarray:
        if self.session is None:
            return self.codec.values(self.symbols(payload))  # the class id's answer: a one-hot vector
        return self.session.run(None, {self.input_name: self.tail_input(payload)})[0][0]  # type: ignore[no-any-return]

    def infer(self, payload: bytes) -> Prediction:
        if not isinstance(payload, bytes):
            raise CodecError(f"a payload must be bytes, got {type(payload).__name__}")
        logits = self.logits(payload).astype(np.float64)
        index = int(np.argmax(logits))
        score = None
        if self.session is not None:
            probs = np.exp(logits - logits.max())
            score = float(probs[index] / probs.sum())
        return Prediction(index, self.bundle.classes[index], score)
