"""k = 0 and k = n + 1: the image baselines (JPEG, WebP, PNG with Pillow) and the class id.

Image codecs encode the image as the device has it (the dataset's native resolution, uint8 grey
H x W or RGB H x W x 3); the server decodes it and resizes it to the model's input size. The size
comes from the image file's own header, checked against a bound before any pixel is decoded, so a
small payload cannot expand into a huge image. (WebP has no grey mode: a grey image comes back as
H x W x 3 with equal channels, which the tail's preprocessing treats the same.)
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

    def __init__(self, params: dict[str, Any], shape: tuple[int, ...] = ()) -> None:
        super().__init__(params, ())
        self.format = str(params.get("format", "jpeg"))
        if self.format not in IMAGE_FORMATS:
            raise CodecError(f"image format must be one of {', '.join(IMAGE_FORMATS)}, got {self.format!r}")
        self.quality = int(params.get("quality", 75))
        if self.format != "png" and not 1 <= self.quality <= 100:
            raise CodecError(f"image quality must be in 1..100, got {self.quality}")
        self.fitted = True  # nothing to fit

    def check_input(self, x: np.ndarray) -> None:
        if x.dtype != np.uint8 or x.ndim not in (2, 3) or (x.ndim == 3 and x.shape[2] != 3):
            raise CodecError(f"image codecs take uint8 H x W or H x W x 3 images, got {x.dtype} {x.shape}")
        if max(x.shape[:2]) >= _MAX_SIDE:
            raise CodecError(f"image side {max(x.shape[:2])} is over the {_MAX_SIDE - 1}-pixel limit")

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

    def decode_body(self, body: bytes) -> np.ndarray:
        """The image file -> uint8 H x W (grey files) or H x W x 3; its size is checked from the
        file's header before any pixel is decoded, so a small body cannot expand into a huge image."""
        try:
            with Image.open(io.BytesIO(body), formats=[IMAGE_FORMATS[self.format]]) as image:
                width, height = image.size
                if not (0 < width < _MAX_SIDE and 0 < height < _MAX_SIDE):
                    raise CodecError(f"image is {width}x{height}; each side must be in 1..{_MAX_SIDE - 1}")
                grey = image.mode in ("L", "1", "I;16", "I", "F")
                return np.asarray(image.convert("L" if grey else "RGB"), dtype=np.uint8)
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            if isinstance(exc, CodecError):
                raise
            raise CodecError(f"{self.format} body is not a valid image file ({type(exc).__name__}: {exc})") from exc

    def max_body_bytes(self) -> int:
        return 16 << 20

    def arrays(self) -> dict[str, np.ndarray]:
        return {}

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.fitted = True


class ClassIdCodec(Codec):
    """k = n + 1: the device runs everything and sends the predicted class (1 byte up to 256
    classes, else 2; little-endian)."""

    kind = "class-id"

    def __init__(self, params: dict[str, Any], shape: tuple[int, ...]) -> None:
        super().__init__(params, shape)
        if len(self.shape) != 1 or not 1 <= self.shape[0] <= 65535:
            raise CodecError(f"the class-id codec needs the logits shape (num_classes,), got {self.shape}")
        self.fitted = True

    def device_work(self, sample_shape: tuple[int, ...]) -> Work:
        return Work(elementwise_ops=self.shape[0])  # the argmax

    def encode_body(self, x: np.ndarray) -> bytes:
        return int(np.argmax(x)).to_bytes(self.max_body_bytes(), "little")

    def decode_body(self, body: bytes) -> np.ndarray:
        if len(body) != self.max_body_bytes() or int.from_bytes(body, "little") >= self.shape[0]:
            raise CodecError(f"class-id body must be {self.max_body_bytes()} byte(s) naming a valid class")
        onehot = np.zeros(self.shape, dtype=np.float32)
        onehot[int.from_bytes(body, "little")] = 1.0
        return onehot

    def max_body_bytes(self) -> int:
        return 1 if self.shape[0] <= 256 else 2

    def arrays(self) -> dict[str, np.ndarray]:
        return {}

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.fitted = True
