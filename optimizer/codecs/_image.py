"""k = 0: the image baselines, JPEG, WebP and PNG with Pillow.

Image codecs encode the image as the device has it (the dataset's native resolution, uint8 grey
H x W or RGB H x W x 3): its symbols are the image itself and its entropy model the image format.
The server decodes it, and the model's preprocessing (resize, crop, normalisation) turns it into
the tail's input, as at every other split. The size comes from the image file's own header,
checked against a bound before any pixel is decoded, so a small payload cannot expand into a huge
image. (WebP has no grey mode: a grey image comes back as H x W x 3 with equal channels, which
the preprocessing treats the same.)
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from optimizer.codecs._base import INPUT, Codec
from optimizer.codecs._errors import CodecError
from optimizer.codecs._fit import Site
from optimizer.codecs._options import CodecOptions, Suggester
from optimizer.codecs._work import Work

if TYPE_CHECKING:
    from optimizer.config import Reader

__all__ = ["IMAGE_FORMATS", "ImageChoices", "ImageCodec", "ImageOptions"]

IMAGE_FORMATS = {"jpeg": "JPEG", "webp": "WEBP", "png": "PNG"}
_MAX_SIDE = 4096
_LOSSLESS = "png"  # has no quality: always 100


@dataclass(frozen=True)
class ImageChoices:
    formats: tuple[str, ...]
    qualities: tuple[int, ...]


class ImageOptions(CodecOptions):
    """``image: {formats: [jpeg, webp, png], qualities: [...]}``; trial parameters ``image_format``
    and ``image_quality`` (none for PNG)."""

    section = "image"
    trial_keys = ("image_format", "image_quality")

    def parse(self, reader: Reader) -> ImageChoices:
        reader.check_keys({"formats", "qualities"})
        qualities = reader.values("qualities", int, minimum=1)
        if max(qualities) > 100:
            raise reader.error(f"values must be <= 100, got {max(qualities)}", "qualities")
        return ImageChoices(reader.values("formats", str, tuple(IMAGE_FORMATS)), qualities)

    def suggest(self, trial: Suggester, choices: ImageChoices, site: Site) -> dict[str, Any]:
        fmt = trial.suggest_categorical("image_format", list(choices.formats))
        quality = 100 if fmt == _LOSSLESS else trial.suggest_categorical("image_quality", list(choices.qualities))
        return {"format": fmt, "quality": quality}

    def grid(self, choices: ImageChoices, site: Site) -> list[dict[str, Any]]:
        return [
            {"image_format": f} if f == _LOSSLESS else {"image_format": f, "image_quality": q}
            for f in choices.formats
            for q in (choices.qualities if f != _LOSSLESS else [None])
        ]

    def references(self, choices: ImageChoices, site: Site) -> list[dict[str, Any]]:
        """Every format, at the middle quality of the space."""
        quality = sorted(choices.qualities)[len(choices.qualities) // 2]
        return [
            {"image_format": f} if f == _LOSSLESS else {"image_format": f, "image_quality": quality}
            for f in choices.formats
        ]

    def from_trial(self, params: dict[str, Any]) -> dict[str, Any]:
        fmt = params.get("image_format")
        return {"format": fmt, "quality": 100 if fmt == _LOSSLESS else params.get("image_quality")}


class ImageCodec(Codec):
    kind = "image"
    place = INPUT
    options = ImageOptions()

    def __init__(self, params: dict[str, Any], shape: tuple[int, ...] = ()) -> None:
        super().__init__(params, ())
        self.format = str(params.get("format", "jpeg"))
        if self.format not in IMAGE_FORMATS:
            raise CodecError(f"image format must be one of {', '.join(IMAGE_FORMATS)}, got {self.format!r}")
        self.quality = int(params.get("quality", 75))
        if self.format != _LOSSLESS and not 1 <= self.quality <= 100:
            raise CodecError(f"image quality must be in 1..100, got {self.quality}")
        self.fitted = True  # nothing to fit

    def check_input(self, x: np.ndarray) -> None:
        if x.dtype != np.uint8 or x.ndim not in (2, 3) or (x.ndim == 3 and x.shape[2] != 3):
            raise CodecError(f"image codecs take uint8 H x W or H x W x 3 images, got {x.dtype} {x.shape}")
        if max(x.shape[:2]) >= _MAX_SIDE:
            raise CodecError(f"image side {max(x.shape[:2])} is over the {_MAX_SIDE - 1}-pixel limit")

    @property
    def exact(self) -> bool:
        return self.format == _LOSSLESS

    def from_symbols(self, symbols: list[np.ndarray]) -> list[np.ndarray]:
        """Decoded images keep their own sizes (the preprocessing resizes them)."""
        return [self.values(s) for s in symbols]

    def device_work(self, sample_shape: tuple[int, ...]) -> Work:
        """Encoding the image as the device holds it (``sample_shape``: H x W or H x W x 3)."""
        return Work(units={self.format: int(sample_shape[0] * sample_shape[1])})

    def server_work(self, sample_shape: tuple[int, ...]) -> Work:
        """Decoding it (the resize to the model's input is the preprocessing's)."""
        return Work(units={self.format: int(sample_shape[0] * sample_shape[1])})

    def encode_symbols(self, symbols: np.ndarray) -> bytes:
        image = np.asarray(symbols)
        self.check_input(image)
        out = io.BytesIO()
        options = {"optimize": True} if self.format == _LOSSLESS else {"quality": self.quality}
        Image.fromarray(image).save(out, format=IMAGE_FORMATS[self.format], **options)
        return out.getvalue()

    def decode_symbols(self, body: bytes) -> np.ndarray:
        """The image file -> uint8 H x W (grey files) or H x W x 3; its size is checked from the
        file's header before any pixel is decoded, so a small body cannot expand into a huge image."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Pillow warns about odd chunks; a broken file raises below
                with Image.open(io.BytesIO(body), formats=[IMAGE_FORMATS[self.format]]) as image:
                    width, height = image.size
                    if not (0 < width < _MAX_SIDE and 0 < height < _MAX_SIDE):
                        raise CodecError(f"image is {width}x{height}; each side must be in 1..{_MAX_SIDE - 1}")
                    grey = image.mode in ("L", "1", "I;16", "I", "F")
                    return np.asarray(image.convert("L" if grey else "RGB"), dtype=np.uint8)
        except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
            if isinstance(exc, CodecError):
                raise
            raise CodecError(f"{self.format} body is not a valid image file ({type(exc).__name__}: {exc})") from exc

    def max_body_bytes(self) -> int:
        return 16 << 20
