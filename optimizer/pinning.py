"""Files pinned by their SHA-256 in a manifest (a bundle's manifest.json, a calibration kit's
kit.json): the digest, and the check that every listed file is there and unchanged. The callers
say what a failure means for their kind of folder and how to fix it."""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["sha256_of", "unpinned"]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def unpinned(folder: Path, files: dict[str, str]) -> tuple[str, str | None] | None:
    """The first listed file (in name order) that is missing from ``folder`` (or names a path outside
    it): ``(name, None)``; or whose SHA-256 differs: ``(name, actual digest)``. None when all match."""
    for name, expected in sorted(files.items()):
        path = folder / name
        if Path(name).name != name or not path.is_file():
            return name, None
        actual = sha256_of(path)
        if actual != expected:
            return name, actual
    return None
