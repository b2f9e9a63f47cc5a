"""What a model expects of its input, as data: normalisation, resize policy, channels.

A model spec declares one :class:`Preprocessing` (torchvision's weights come with theirs, a zoo card or a
user's factory may declare its own); the data layer applies it. Resize policies:

- ``resize_crop``: the shorter side goes to ``round(size / crop_fraction)``, then a centre crop of
  ``size`` x ``size`` (torchvision's ImageNet evaluation: 256 -> 224 is ``crop_fraction = 0.875``);
- ``stretch``: the whole image is resized to ``size`` x ``size`` (no crop; Fashion-MNIST's square images).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from optimizer.data._dataset import IMAGENET_MEAN, IMAGENET_STD
from optimizer.errors import UserError

__all__ = ["INTERPOLATIONS", "RESIZE_POLICIES", "Preprocessing"]

RESIZE_POLICIES = ("resize_crop", "stretch")
INTERPOLATIONS = ("bilinear", "bicubic", "nearest")


@dataclass(frozen=True)
class Preprocessing:
    """How images become model input. ``mean`` and ``std`` are per channel, on images scaled to [0, 1]."""

    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    resize: str = "resize_crop"
    crop_fraction: float = 1.0
    interpolation: str = "bilinear"
    channels: int = 3

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        if self.channels not in (1, 3):
            raise UserError(f"preprocessing channels must be 1 or 3, got {self.channels!r}")
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise UserError(
                f"preprocessing needs one mean and one std per channel ({self.channels}), "
                f"got mean {list(self.mean)} and std {list(self.std)}"
            )
        if any(s <= 0 for s in self.std):
            raise UserError(f"preprocessing std must be positive, got {list(self.std)}")
        if self.resize not in RESIZE_POLICIES:
            raise UserError(f"resize policy must be one of {', '.join(RESIZE_POLICIES)}, got {self.resize!r}")
        if not 0 < self.crop_fraction <= 1:
            raise UserError(f"crop_fraction must be in (0, 1], got {self.crop_fraction!r}")
        if self.interpolation not in INTERPOLATIONS:
            raise UserError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got {self.interpolation!r}")

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["mean"], out["std"] = list(self.mean), list(self.std)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Preprocessing:
        """The inverse of :meth:`to_json`; unknown keys are errors, missing ones take the defaults."""
        if not isinstance(data, dict):
            raise UserError(f"preprocessing must be a mapping, got {type(data).__name__}")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"unknown preprocessing keys {unknown}; the known ones are {sorted(known)}")
        return cls(**data)
