"""A calibration kit: the graphs ``split-opt calibrate`` times, exported by the full install so that
the device install (no torch) can time them and fit its own profile.

A kit is a folder (``split-opt calibrate --make-kit DIR`` writes it, optimizer/profiler/_kit_make.py)::

    kit.json              the manifest: what to time, the countable terms, the sha256 of every file
    weights.bin           every weight tensor of 1 KiB or more, once (the graphs point into it:
                          ONNX external data, so a segment and every head that holds it share it)
    m0-segment-01.onnx    model 0's fx segment 1 alone, input: the activation before it
    m0-head-01.onnx       model 0's head of split 1 (segments 1..1), input: the image
    ...

kit.json holds ``format``; ``made_by`` (versions, host, date); ``parts`` (``compute`` and/or
``coding``); ``num_classes``; ``models``: per (model spec, input size) its ``channels``, its
``segments`` (each SegmentCost as JSON: layers with op class, MACs and parameters, element-wise ops
per operator, input and output elements: what ``fit_compute`` counts) and the file names of its
``segment_graphs`` and ``head_graphs`` (one per segment, in order); ``coding``: the seed of the
synthetic inputs the coding steps are timed on (they need no files: the device runs the real codec
code); ``files``: file name -> sha256. :func:`open_kit` checks every file before anything runs.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from optimizer.errors import UserError
from optimizer.pinning import unpinned
from optimizer.profiler._costs import LayerCost, SegmentCost

__all__ = [
    "KIT_FORMAT",
    "KIT_MANIFEST",
    "Kit",
    "KitError",
    "KitModel",
    "open_kit",
    "segment_from_json",
    "segment_to_json",
]

KIT_FORMAT = 1
KIT_MANIFEST = "kit.json"
KIT_PARTS = ("compute", "coding")
_REMAKE = "make it again on the host with `split-opt calibrate --make-kit DIR` and copy the whole folder"


class KitError(UserError):
    """A calibration kit that is missing, malformed or altered: nothing in it may run."""


@dataclass(frozen=True)
class KitModel:
    """One (model spec, input size) of a kit: its segments' terms and the graphs that time them."""

    spec: str
    input_size: int
    channels: int
    segments: list[SegmentCost]
    segment_graphs: list[Path]  # segment k alone, k = 1..last
    head_graphs: list[Path]  # the head of split k (segments 1..k), k = 1..last

    @property
    def image_shape(self) -> tuple[int, int, int, int]:
        return (1, self.channels, self.input_size, self.input_size)


@dataclass(frozen=True)
class Kit:
    folder: Path
    parts: tuple[str, ...]
    models: list[KitModel]
    coding_seed: int
    made_by: dict[str, str]

    @property
    def graphs(self) -> int:
        return sum(len(m.segment_graphs) + len(m.head_graphs) for m in self.models)


def segment_to_json(segment: SegmentCost) -> dict[str, Any]:
    return {**asdict(segment), "shape": list(segment.shape)}


def segment_from_json(data: dict[str, Any]) -> SegmentCost:
    layers = [LayerCost(**layer) for layer in data["layers"]]
    return SegmentCost(**{**data, "shape": tuple(data["shape"]), "layers": layers})


def _manifest(folder: Path) -> dict[str, Any]:
    path = folder / KIT_MANIFEST
    if not path.is_file():
        raise KitError(f"{folder} is not a calibration kit: {KIT_MANIFEST} is missing there; {_REMAKE}")
    try:
        manifest = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KitError(f"{path} is not valid JSON ({exc}): the kit is damaged; {_REMAKE}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != KIT_FORMAT:
        seen = manifest.get("format") if isinstance(manifest, dict) else None
        raise KitError(f"{path} has kit format {seen!r}, this split-opt reads format {KIT_FORMAT}; {_REMAKE}")
    return manifest


def _check_files(folder: Path, files: dict[str, str]) -> None:
    """Every listed file exists inside the kit and has its recorded sha256."""
    problem = unpinned(folder, files)
    if problem is None:
        return
    name, actual = problem
    if actual is None:
        raise KitError(f"kit file {name} listed in {folder / KIT_MANIFEST} is missing; {_REMAKE}")
    raise KitError(
        f"kit file {folder / name} has sha256 {actual[:16]}..., {KIT_MANIFEST} says {files[name][:16]}...: the kit "
        f"was altered or damaged after it was made; {_REMAKE}"
    )


def _graphs(folder: Path, names: list[str], files: dict[str, str], count: int) -> list[Path]:
    if len(names) != count or not set(names) <= set(files):
        raise ValueError(f"{count} graphs listed in files expected, got {names}")
    return [folder / name for name in names]


def _model(folder: Path, data: dict[str, Any], files: dict[str, str]) -> KitModel:
    segments = [segment_from_json(s) for s in data["segments"]]
    return KitModel(
        spec=str(data["spec"]),
        input_size=int(data["input_size"]),
        channels=int(data["channels"]),
        segments=segments,
        segment_graphs=_graphs(folder, data["segment_graphs"], files, len(segments)),
        head_graphs=_graphs(folder, data["head_graphs"], files, len(segments)),
    )


def open_kit(folder: Path) -> Kit:
    """Read a kit's manifest and check the sha256 of every file it lists; KitError if anything is off."""
    manifest = _manifest(folder)
    try:
        files = {str(k): str(v) for k, v in manifest["files"].items()}
        _check_files(folder, files)
        parts = tuple(str(p) for p in manifest["parts"])
        if not parts or set(parts) - set(KIT_PARTS):
            raise ValueError(f"parts must be some of {', '.join(KIT_PARTS)}, got {parts}")
        return Kit(
            folder=folder,
            parts=parts,
            models=[_model(folder, m, files) for m in manifest["models"]],
            coding_seed=int(manifest["coding"]["seed"]),
            made_by={str(k): str(v) for k, v in manifest["made_by"].items()},
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # KitError is none of these
        raise KitError(f"{folder / KIT_MANIFEST} is malformed ({type(exc).__name__}: {exc}); {_REMAKE}") from None
