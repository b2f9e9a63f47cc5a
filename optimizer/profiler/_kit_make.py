"""Write a calibration kit (the full install): the graphs ``split-opt calibrate`` times, as ONNX.

The graphs are exactly the ones the full install's calibration runs in ONNX Runtime: the same export
(optimizer.models.onnx_bytes) of every fx segment alone, its input shaped as the real activation
before it, and of every head, for each (model spec, input size), untrained (weights do not change
the time). Every initializer of 1 KiB or more is moved, once per distinct content, into
``weights.bin`` at a 4 KiB-aligned offset (ONNX external data: ONNX Runtime can map it instead of
copying), so a kit holds each weight once rather than once per head that contains it (MobileNetV2
at 224: 9 MB of weights instead of 91 MB). The format is described in optimizer/profiler/_kit.py.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import onnx
import torch

from optimizer import __version__
from optimizer.errors import UserError
from optimizer.models import build_model, onnx_bytes, split_graph
from optimizer.pinning import sha256_of
from optimizer.profiler._cache import spec_costs
from optimizer.profiler._kit import KIT_FORMAT, KIT_MANIFEST, Kit, open_kit, segment_to_json

__all__ = ["make_kit"]

WEIGHTS = "weights.bin"
_EXTERNAL_AT_LEAST = 1024  # bytes: smaller initializers (biases, shapes) stay inside their graph
_ALIGN = 4096
_CODING_SEED = 0


class _SharedWeights:
    """``weights.bin``: each distinct initializer's bytes once; graphs point into it."""

    def __init__(self, file: BinaryIO) -> None:
        self.file = file
        self.offsets: dict[bytes, tuple[int, int]] = {}

    def _place(self, raw: bytes) -> tuple[int, int]:
        key = hashlib.sha256(raw).digest()
        if key not in self.offsets:
            position = self.file.tell()
            padding = -position % _ALIGN
            self.file.write(bytes(padding))
            self.file.write(raw)
            self.offsets[key] = (position + padding, len(raw))
        return self.offsets[key]

    def externalize(self, model_bytes: bytes) -> bytes:
        """The graph with its large initializers moved into the shared file."""
        model = onnx.load_from_string(model_bytes)
        for tensor in model.graph.initializer:
            if len(tensor.raw_data) < _EXTERNAL_AT_LEAST:
                continue
            offset, length = self._place(tensor.raw_data)
            tensor.ClearField("raw_data")
            tensor.data_location = onnx.TensorProto.EXTERNAL
            for key, value in (("location", WEIGHTS), ("offset", str(offset)), ("length", str(length))):
                entry = tensor.external_data.add()
                entry.key, entry.value = key, value
        return model.SerializeToString()


def _previous_kit_files(folder: Path) -> set[str]:
    try:
        return {KIT_MANIFEST, *json.loads((folder / KIT_MANIFEST).read_text())["files"]}
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def _prepare(folder: Path) -> None:
    """A new or empty folder, or one that holds only a kit made before (its files are replaced)."""
    if folder.exists() and not folder.is_dir():
        raise UserError(f"--make-kit {folder}: that is a file; give a new or empty folder")
    present = {p.name for p in folder.iterdir()} if folder.exists() else set()
    if present - _previous_kit_files(folder):
        raise UserError(
            f"--make-kit {folder}: the folder holds files that are not a kit's "
            f"({', '.join(sorted(present)[:3])}...); give a new or empty folder"
        )
    for name in present:
        (folder / name).unlink()
    folder.mkdir(parents=True, exist_ok=True)


@torch.no_grad()
def _export_model(
    folder: Path, index: int, spec: str, size: int, num_classes: int, weights: _SharedWeights
) -> dict[str, Any]:
    graph = split_graph(spec, build_model(spec, num_classes))
    segments = spec_costs(spec, num_classes, size).segments
    image = torch.zeros(1, graph.channels, size, size)
    names: dict[str, list[str]] = {"segment_graphs": [], "head_graphs": []}
    x = image
    for k in range(1, len(graph)):
        segment = graph.segment(k)
        for kind, module, shape in (("segment", segment, x.shape[1:]), ("head", graph.head(k), image.shape[1:])):
            name = f"m{index}-{kind}-{k:02d}.onnx"
            (folder / name).write_bytes(weights.externalize(onnx_bytes(module, tuple(shape))))
            names[f"{kind}_graphs"].append(name)
        x = segment(x)
    return {
        "spec": spec,
        "input_size": size,
        "channels": graph.channels,
        "segments": [segment_to_json(s) for s in segments],
        **names,
    }


def make_kit(
    folder: Path, models: Sequence[tuple[str, int]], parts: Sequence[str] = ("compute", "coding"), num_classes: int = 10
) -> Kit:
    """Export the graphs of ``models`` (when ``parts`` has compute) and write the kit's manifest."""
    _prepare(folder)
    entries = []
    if "compute" in parts:
        with (folder / WEIGHTS).open("wb") as file:
            weights = _SharedWeights(file)
            entries = [_export_model(folder, i, s, n, num_classes, weights) for i, (s, n) in enumerate(models)]
    files = {p.name: sha256_of(p) for p in sorted(folder.iterdir())}
    manifest = {
        "format": KIT_FORMAT,
        "made_by": {
            "split_opt": __version__,
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "host": platform.node(),
            "date": dt.date.today().isoformat(),
        },
        "parts": [p for p in ("compute", "coding") if p in parts],
        "num_classes": num_classes,
        "models": entries,
        "coding": {"seed": _CODING_SEED},
        "files": files,
    }
    (folder / KIT_MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return open_kit(folder)
