"""k = 0 and k = n + 1: the image baselines (JPEG, WebP, PNG with Pillow) and the class id.

Image codecs encode the image as the device has it (the dataset's native resolution, uint8 grey
H x W or RGB H x W x 3); the server decodes it and resizes it to the model's input size. Before
decoding, the image header's size must equal the payload's declared shape, so a small payload
cannot expand into a huge image.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image

from optimizer.codecs._base import Codec
from optimizer.codecs._errors import CodecError
from optimizer.codecs._work import Work

__all__ = ["IMAGE_FORMATS", "ClassIdCodec", "ImageCodec"]

IMAGE_FORMATS = {"jpeg": "JPEG", "webp": "WEBP", "png": "PNG"}
_MAX_SIDE = 4096


class ImageCodec(Codec):
    kind = "image"
    codec_id = 3

    def __init__(self, params: dict[str, Any], shape: tuple[int, ...] = ()) -> None:
        super().__init__(params, ())
        self.format = str(params.get("format", "jpeg"))
        if self.format not in IMAGE_FORMATS:
            raise CodecError(f"image format must be one of {', '.join(IMAGE_FORMATS)}, got {self.format!r}")
        self.quality = int(params.get("quality", 75))
        if self.format != "png" and not 1 <= self.quality <= 100:
            raise CodecError(f"image quality must be in 1..100, got {self.quality}")
        self.fitted = True  # nothing to fit

    def header_shape(self, x: np.ndarray) -> tuple[int, ...]:
        if x.dtype != np.uint8 or x.ndim not in (2, 3) or (x.ndim == 3 and x.shape[2] != 3):
            raise CodecError(f"image codecs take uint8 H x W or H x W x 3 images, got {x.dtype} {x.shape}")
        if max(x.shape[:2]) >= _MAX_SIDE:
            raise CodecError(f"image side {max(x.shape[:2])} is over the {_MAX_SIDE - 1}-pixel limit")
        return tuple(x.shape)

    def device_work(self, sample_shape: tuple[int, ...]) -> Work:
        """Encoding the image as the device holds it (``sample_shape``: H x W or H x W x 3)."""
        return Work(units={self.format: int(sample_shape[0] * sample_shape[1])})

    def server_work(self, sample_shape: tuple[int, ...]) -> Work:
        """Decoding it (the resize to the model's input is the tail's first step)."""
        return Work(units={self.format: int(sample_shape[0] * sample_shape[1])})

    def encode_body(self, x: np.ndarray) -> bytes:
        out = io.BytesIO()
        options = {"optimize": True} if self.format == "png" else {"quality": self.quality}
        Image.fromarray(x).save(out, format=IMAGE_FORMATS[self.format], **options)
        return out.getvalue()

    def decode_body(self, body: bytes, shape: tuple[int, ...]) -> np.ndarray:
        if len(shape) not in (2, 3) or (len(shape) == 3 and shape[2] != 3):
            raise CodecError(f"an image payload must declare H x W or H x W x 3, got {shape}")
        with Image.open(io.BytesIO(body), formats=[IMAGE_FORMATS[self.format]]) as image:
            if image.size != (shape[1], shape[0]):
                raise CodecError(
                    f"image is {image.size[0]}x{image.size[1]}, the payload declares {shape[1]}x{shape[0]}"
                )
            return np.asarray(image.convert("L" if len(shape) == 2 else "RGB"), dtype=np.uint8)

    def max_body_bytes(self) -> int:
        return 16 << 20

    def max_dim(self) -> int:
        return _MAX_SIDE

    def arrays(self) -> dict[str, np.ndarray]:
        return {}

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.fitted = True


class ClassIdCodec(Codec):
    """k = n + 1: the device runs everything and sends the predicted class (2 bytes, uint16)."""

    kind = "class-id"
    codec_id = 4

    def __init__(self, params: dict[str, Any], shape: tuple[int, ...]) -> None:
        super().__init__(params, shape)
        if len(self.shape) != 1 or not 1 <= self.shape[0] <= 65535:
            raise CodecError(f"the class-id codec needs the logits shape (num_classes,), got {self.shape}")
        self.fitted = True

    def device_work(self, sample_shape: tuple[int, ...]) -> Work:
        return Work(elementwise_ops=self.shape[0])  # the argmax

    def encode_body(self, x: np.ndarray) -> bytes:
        return int(np.argmax(x)).to_bytes(2, "little")

    def decode_body(self, body: bytes, shape: tuple[int, ...]) -> np.ndarray:
        if len(body) != 2 or int.from_bytes(body, "little") >= shape[0]:
            raise CodecError("class-id body must be 2 bytes naming a valid class")
        onehot = np.zeros(shape, dtype=np.float32)
        onehot[int.from_bytes(body, "little")] = 1.0
        return onehot

    def max_body_bytes(self) -> int:
        return 2

    def arrays(self) -> dict[str, np.ndarray]:
        return {}

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.fitted = True
