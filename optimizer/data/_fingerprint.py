"""A dataset's identity from its files, for keys of caches of model outputs.

The spec string is not enough: ``fashion-mnist`` names whichever root the environment variable or
Debian's package gives, and a folder's images can change under the same path. The fingerprint is a
SHA-256 over the labels and, per file: for Fashion-MNIST the four IDX files' contents (about 30 MB,
hashed once per process and file version); for an image folder every image's relative path, size
and modification time (hashing the contents of a large folder would cost more than the cache saves).
"""

from __future__ import annotations

import functools
import hashlib
import os
import weakref
from pathlib import Path

from optimizer.data._dataset import ImageDataset

__all__ = ["dataset_fingerprint"]

_MEMO: weakref.WeakKeyDictionary[ImageDataset, str] = weakref.WeakKeyDictionary()


@functools.lru_cache(maxsize=64)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:  # size and mtime: a changed file hashes anew
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _files(dataset: ImageDataset) -> list[tuple[str, str]]:
    """(name, identity) per file the dataset reads."""
    from optimizer.data._fashion_mnist import _FILES, FashionMNIST, _find_file
    from optimizer.data._imagefolder import ImageFolder

    if isinstance(dataset, FashionMNIST):
        out = []
        for stem in _FILES.values():
            path = _find_file(dataset.root, stem)
            if path is not None:
                st = path.stat()
                out.append((path.name, _file_sha256(str(path), st.st_size, st.st_mtime_ns)))
        return out
    if isinstance(dataset, ImageFolder):
        out = []
        for path in dataset._paths:
            st = os.stat(path)
            out.append((str(Path(path).relative_to(dataset.root)), f"{st.st_size}:{st.st_mtime_ns}"))
        return out
    return []


def dataset_fingerprint(dataset: ImageDataset) -> str:
    """SHA-256 (hex) of the dataset's kind, labels and files; memoised per dataset object."""
    if dataset in _MEMO:
        return _MEMO[dataset]
    digest = hashlib.sha256(type(dataset).__name__.encode())
    digest.update(dataset.labels.astype("<i8").tobytes())
    for name, identity in _files(dataset):
        digest.update(f"\0{name}\0{identity}".encode())
    _MEMO[dataset] = digest.hexdigest()
    return _MEMO[dataset]
