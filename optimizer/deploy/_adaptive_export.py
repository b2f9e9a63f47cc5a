"""Writing an adaptive bundle: several configurations of one study, one policy, one manifest.

Each configuration is written as a single bundle would be (its codec state and graphs, by _export),
then its files are renamed after their content (``head-<sha256[:12]>.onnx``, ``codec-....npz``), so
configurations whose files are byte for byte the same share one: the same model at the same split
with a graph-free codec (float16), image codecs at k = 0 (one tail for PNG, JPEG, WebP at one input
size), the same head for class ids. PCA and bottleneck graphs fold the codec's own state in, so they
are shared only between equal codecs.

The manifest is a single bundle's for configuration 0 (so readers of single bundles run that one),
plus ``configurations`` (each one's tag, model, k, codec, graphs, limits, expectations, study
trial) and ``policy`` (see _policy); ``files`` pins every file, as always, and signing covers it all.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optimizer.codecs import save_codec
from optimizer.deploy._bundle import MANIFEST, BundleError, sha256_of
from optimizer.deploy._export import CODEC_FILE, ExportSpec, _manifest, _replace, _write_graphs
from optimizer.protocol import MAX_TAG

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = ["export_adaptive_bundle"]

# The keys a configuration does not own: they are the bundle's.
_BUNDLE_KEYS = ("format", "name", "created", "dataset", "files", "versions")


def _content_name(path: Path, digest: str) -> str:
    return f"{path.stem}-{digest[:12]}{path.suffix}"


def _write_configuration(spec: ExportSpec, tag: int, folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Write one configuration's files into ``folder`` under content names; (the manifest a single
    bundle of it would have, its entry in the adaptive manifest)."""
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        work = Path(scratch)
        save_codec(spec.codec, work / CODEC_FILE)
        single = _manifest(spec, work, _write_graphs(spec, work))
        entry = {k: v for k, v in single.items() if k not in _BUNDLE_KEYS}
        renamed: dict[str, str] = {}
        for path in sorted(work.iterdir()):
            name = _content_name(path, sha256_of(path))
            if not (folder / name).exists():  # else: the same bytes are already there, shared
                path.rename(folder / name)
            renamed[path.name] = name
    entry["codec"]["state_file"] = renamed[CODEC_FILE]
    for role in ("head", "tail"):
        if entry[role]["file"] is not None:
            entry[role]["file"] = renamed[entry[role]["file"]]
    return single, {"tag": tag, **entry}


def _bundle_manifest(
    first: dict[str, Any], folder: Path, entries: list[dict[str, Any]], policy: dict[str, Any]
) -> dict[str, Any]:
    """Configuration 0's single manifest with its files renamed, every file pinned, the rest added."""
    top = {k: v for k, v in entries[0].items() if k != "tag"}
    manifest = {k: top.get(k, v) for k, v in first.items()}
    manifest["files"] = {p.name: sha256_of(p) for p in sorted(folder.iterdir()) if p.name != MANIFEST}
    return {**manifest, "configurations": entries, "policy": policy}


def export_adaptive_bundle(
    specs: Sequence[ExportSpec],
    policy: dict[str, Any],
    out: Path,
    force: bool = False,
    sign_key: Ed25519PrivateKey | None = None,
) -> dict[str, Any]:
    """Write ``specs`` (tag = position) and ``policy`` as one bundle at ``out`` (built in a sibling
    folder first, so a failure leaves no half bundle); with ``sign_key``, manifest.sig signs it."""
    if not 1 <= len(specs) <= MAX_TAG + 1:
        raise BundleError(f"an adaptive bundle holds 1 to {MAX_TAG + 1} configurations, got {len(specs)}")
    out = Path(out)
    if out.exists() and not force:
        raise BundleError(f"{out} already exists; pass --force to replace it, or pick another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    folder = out.with_name(f".{out.name}.partial")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    try:
        written = [_write_configuration(spec, tag, folder) for tag, spec in enumerate(specs)]
        manifest = _bundle_manifest(written[0][0], folder, [entry for _, entry in written], policy)
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if sign_key is not None:
            from optimizer.deploy._signing import sign_manifest

            sign_manifest(folder, sign_key)
        _replace(folder, out, force)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return manifest
