"""Writing a bundle: the two ONNX graphs, the codec state and the manifest with every file's sha256.

The caller (``split-opt export``) rebuilds the study's configuration: the model's torch.fx halves
at the split (at its input size, with that size's BatchNorm statistics) and the codec fitted on
calib exactly as the study fitted it. This module only turns them into files; it never looks at
the study itself.
"""

from __future__ import annotations

import json
import platform
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from optimizer import __version__
from optimizer.codecs import Codec, save_codec
from optimizer.deploy._bundle import BUNDLE_FORMAT, MANIFEST, BundleError, sha256_of
from optimizer.deploy._graphs import OPSET, export_onnx, head_module, tail_module

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = ["ExportSpec", "export_bundle"]

CODEC_FILE = "codec.npz"
_MAX_HEADER_BYTES = 2 + 1 + 1 + 4 + 1 + 4 * 5 + 5  # magic, version, id, hash, ndim, 4 varint dims, length


@dataclass(frozen=True)
class ExportSpec:
    """Everything a bundle is made of; ``head`` and ``tail`` run at ``model_info['input_size']``
    (``head`` takes images of ``model_info['preprocessing']['channels']`` channels)."""

    name: str
    head: nn.Module  # the model up to split k (models.SplitGraph.head)
    tail: nn.Module  # the rest (models.SplitGraph.tail)
    model_info: dict[str, Any]  # spec, family, input_size, num_classes, weights, classes, preprocessing, split
    k: int
    splits: int  # how many split points the model has (k = 0..splits - 1)
    codec: Codec
    expected: dict[str, Any]  # test_accuracy, test_accuracy_ci, payload_bytes_mean, device_latency_ms, ...
    dataset: dict[str, Any]  # spec, split_seed, test_samples, image_mode
    study: dict[str, Any] = field(default_factory=dict)


def _image_example(spec: ExportSpec) -> torch.Tensor:
    size, channels = int(spec.model_info["input_size"]), int(spec.model_info["preprocessing"]["channels"])
    return torch.zeros(1, channels, size, size)


def _tail_example(spec: ExportSpec, input_name: str) -> torch.Tensor:
    if input_name == "image":
        return _image_example(spec)
    return torch.from_numpy(spec.codec.symbols_example()[None])


def _write_graphs(spec: ExportSpec, folder: Path) -> dict[str, dict[str, Any]]:
    """head.onnx and tail.onnx where the split has them; their roles for the manifest."""
    roles: dict[str, dict[str, Any]] = {}
    head = head_module(spec.head, spec.codec)
    roles["head"] = {"file": None, "input": "image", "output": None}
    if head is not None:
        export_onnx(head[0], _image_example(spec), folder / "head.onnx", "image", head[1])
        roles["head"] = {"file": "head.onnx", "input": "image", "output": head[1]}
    tail = tail_module(spec.tail, spec.codec)
    roles["tail"] = {"file": None, "input": None, "output": None}
    if tail is not None:
        export_onnx(tail[0], _tail_example(spec, tail[1]), folder / "tail.onnx", tail[1], "logits")
        roles["tail"] = {"file": "tail.onnx", "input": tail[1], "output": "logits"}
    return roles


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime

    return {
        "split-opt": __version__,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "onnx_opset": str(OPSET),
    }


def _manifest(spec: ExportSpec, folder: Path, roles: dict[str, dict[str, Any]]) -> dict[str, Any]:
    files = {p.name: sha256_of(p) for p in sorted(folder.iterdir()) if p.name != MANIFEST}
    return {
        "format": BUNDLE_FORMAT,
        "name": spec.name,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": spec.model_info,
        "k": spec.k,
        "splits": spec.splits,
        "codec": {
            "kind": spec.codec.kind,
            **spec.codec.params,
            "shape": list(spec.codec.shape),
            "state_file": CODEC_FILE,
            "state_hash": spec.codec.state_hash().hex(),
        },
        **roles,
        "limits": {"max_payload_bytes": _MAX_HEADER_BYTES + spec.codec.max_body_bytes()},
        "dataset": spec.dataset,
        "expected": spec.expected,
        "study": spec.study,
        "files": files,
        "versions": _versions(),
    }


def _replace(folder: Path, out: Path, force: bool) -> None:
    if out.exists():
        if not force:
            raise BundleError(f"{out} already exists; pass --force to replace it, or pick another --out")
        if not (out / MANIFEST).is_file():
            raise BundleError(f"{out} exists and is not a bundle (no {MANIFEST}); it will not be replaced")
        shutil.rmtree(out)
    folder.rename(out)


def export_bundle(
    spec: ExportSpec, out: Path, force: bool = False, sign_key: Ed25519PrivateKey | None = None
) -> dict[str, Any]:
    """Write the bundle to ``out`` (built in a sibling folder first, so a failure leaves no half bundle);
    with ``sign_key``, manifest.sig signs the manifest (see _signing)."""
    out = Path(out)
    if out.exists() and not force:
        raise BundleError(f"{out} already exists; pass --force to replace it, or pick another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    folder = out.with_name(f".{out.name}.partial")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    try:
        save_codec(spec.codec, folder / CODEC_FILE)
        manifest = _manifest(spec, folder, _write_graphs(spec, folder))
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if sign_key is not None:
            from optimizer.deploy._signing import sign_manifest

            sign_manifest(folder, sign_key)
        _replace(folder, out, force)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return manifest
