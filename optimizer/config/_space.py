"""Search spaces (search_spaces/*.yaml): which models, splits and codecs a study may try.

Schema (documented for users in search_spaces/README.md):

    name: text
    description: text
    family: mobilenetv2
    dataset: fashion-mnist              # a dataset spec
    weights: zoo                        # zoo (the bundled model per alpha), torchvision, or file:PATH
    alphas: [0.35, 0.5, 0.75, 1.0]
    input_sizes: [32, 48, 64, 96]
    splits: {min: 0, max: 20}           # k range, clipped to 0..n+1 of the model
    pca:                                # codec choices for 1 <= k <= n
      geometry: [channel, tile]
      tile: 2                           # block side for the tile geometry
      components: [1, 2, 4, 8, 16, 32]
      bits: [2, 3, 4, 6, 8]
      coders: [ans, huffman]
    image:                              # codec choices for k = 0
      formats: [jpeg, webp, png]
      qualities: [10, 30, 50, 75, 90]
    samples: {calib: 1000, val: 1000}   # images used to fit codecs and to score trials
    bottleneck: {files: [...]}          # optional: trained bottlenecks (see _bottleneck_space)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optimizer.config._bottleneck_space import BottleneckChoice, parse_bottlenecks
from optimizer.config._schema import Reader, load_yaml_mapping
from optimizer.errors import UserError

__all__ = ["ImageChoices", "PcaChoices", "SearchSpace", "load_search_space"]

_GEOMETRIES = ("channel", "tile")
_CODERS = ("ans", "huffman", "ctx")
_FORMATS = ("jpeg", "webp", "png")


@dataclass(frozen=True)
class PcaChoices:
    geometry: tuple[str, ...]
    tile: int
    components: tuple[int, ...]
    bits: tuple[int, ...]
    coders: tuple[str, ...]


@dataclass(frozen=True)
class ImageChoices:
    formats: tuple[str, ...]
    qualities: tuple[int, ...]


@dataclass(frozen=True)
class SearchSpace:
    name: str
    description: str
    path: str
    family: str
    dataset: str
    weights: str
    alphas: tuple[float, ...]
    input_sizes: tuple[int, ...]
    k_min: int
    k_max: int
    pca: PcaChoices
    image: ImageChoices
    calib_samples: int
    val_samples: int
    bottlenecks: tuple[BottleneckChoice, ...] = ()

    def bottlenecks_at(self, alpha: float, input_size: int, k: int) -> tuple[BottleneckChoice, ...]:
        """The trained bottlenecks for one (alpha, input size, k), in the file's order."""
        return tuple(
            b for b in self.bottlenecks if abs(b.alpha - alpha) < 1e-9 and b.input_size == input_size and b.k == k
        )

    def to_json(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def _list(
    reader: Reader, key: str, kind: type, allowed: tuple[Any, ...] | None = None, minimum: float | None = None
) -> tuple[Any, ...]:
    values = reader.data[key]
    if not isinstance(values, list) or not values:
        raise reader.error(f"must be a non-empty list, got {values!r}", key)
    out = []
    for v in values:
        ok = (
            isinstance(v, kind) and not isinstance(v, bool)
            if kind is not float
            else (isinstance(v, int | float) and not isinstance(v, bool))
        )
        if not ok:
            raise reader.error(f"must hold {kind.__name__} values, got {v!r}", key)
        if allowed is not None and v not in allowed:
            raise reader.error(f"values must be among {', '.join(map(str, allowed))}, got {v!r}", key)
        if minimum is not None and v < minimum:
            raise reader.error(f"values must be >= {minimum:g}, got {v!r}", key)
        out.append(kind(v))
    if len(set(out)) != len(out):
        raise reader.error(f"must not repeat values, got {values!r}", key)
    return tuple(out)


def _pca(reader: Reader) -> PcaChoices:
    r = reader.child("pca")
    r.check_keys({"geometry", "components", "bits", "coders"}, frozenset({"tile"}))
    bits = _list(r, "bits", int, minimum=1)
    if max(bits) > 16:
        raise r.error(f"values must be <= 16, got {max(bits)}", "bits")
    tile = int(r.number("tile", 1, strict=False)) if "tile" in r.data else 2
    return PcaChoices(
        _list(r, "geometry", str, _GEOMETRIES),
        tile,
        _list(r, "components", int, minimum=1),
        bits,
        _list(r, "coders", str, _CODERS),
    )


def _image(reader: Reader) -> ImageChoices:
    r = reader.child("image")
    r.check_keys({"formats", "qualities"})
    qualities = _list(r, "qualities", int, minimum=1)
    if max(qualities) > 100:
        raise r.error(f"values must be <= 100, got {max(qualities)}", "qualities")
    return ImageChoices(_list(r, "formats", str, _FORMATS), qualities)


def parse_search_space(data: dict[str, Any], path: Path) -> SearchSpace:
    reader = Reader(data, path)
    reader.check_keys(
        {
            "name",
            "description",
            "family",
            "dataset",
            "weights",
            "alphas",
            "input_sizes",
            "splits",
            "pca",
            "image",
            "samples",
        },
        frozenset({"bottleneck"}),
    )
    if reader.text("family") != "mobilenetv2":
        raise reader.error(f"only mobilenetv2 is supported, got {data['family']!r}", "family")
    splits, samples = reader.child("splits"), reader.child("samples")
    splits.check_keys({"min", "max"})
    samples.check_keys({"calib", "val"})
    k_min, k_max = int(splits.number("min", 0, strict=False)), int(splits.number("max", 0, strict=False))
    if k_min > k_max:
        raise splits.error(f"min <= max must hold, got min={k_min}, max={k_max}")
    return SearchSpace(
        name=reader.text("name"),
        description=reader.text("description"),
        path=str(path),
        family="mobilenetv2",
        dataset=reader.text("dataset"),
        weights=reader.text("weights"),
        alphas=_list(reader, "alphas", float, minimum=0.01),
        input_sizes=_list(reader, "input_sizes", int, minimum=32),
        k_min=k_min,
        k_max=k_max,
        pca=_pca(reader),
        image=_image(reader),
        calib_samples=int(samples.number("calib", 1)),
        val_samples=int(samples.number("val", 1)),
        bottlenecks=parse_bottlenecks(reader),
    )


def load_search_space(path: str | Path) -> SearchSpace:
    """Read and check a search space; any problem is a UserError naming file, field and rule."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"search space {path} does not exist; pass one of search_spaces/*.yaml")
    return parse_search_space(load_yaml_mapping(path), path)
