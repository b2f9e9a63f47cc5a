"""A deployment bundle on disk: its files, its manifest, and the sha256 check done before any use.

    deploy/NAME/
      manifest.json   model spec, k, codec parameters, expected figures, sha256 of every other file
      head.onnx       device half: image -> integer symbols (or float16 activation, or logits);
                      absent at k = 0, where the device sends the image itself
      codec.npz       codec state (numpy arrays + JSON metadata, read with allow_pickle=False)
      tail.onnx       server half: symbols (or activation, or image) -> logits; absent at k = n + 1,
                      where the device sends the class id

The manifest cannot list its own hash, so it is the root of trust: its ``files`` table pins every
other file, and the codec state additionally carries its own state hash. The manifest's SHA-256 is the
bundle's identity (``Bundle.identity``): the device sends it beside its payloads, the server checks it.

An adaptive bundle (``export --adaptive``) holds several configurations: its manifest's
``configurations`` lists each one's tag, model, k, codec, graphs, limits and expectations (files named
by their content, so configurations whose graphs are byte for byte the same share one file), its
top level repeats configuration 0's keys (so a reader of single bundles runs configuration 0), and
its ``policy`` maps the uplink rate to a tag (see _policy). ``Bundle.configurations`` gives one
Bundle per configuration, each with its ``tag``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optimizer.codecs import Codec, CodecError, load_codec
from optimizer.deploy._policy import Policy, policy_of
from optimizer.errors import UserError
from optimizer.imaging import Preprocessing, legacy_preprocessing
from optimizer.pinning import sha256_of, unpinned
from optimizer.protocol import MAX_TAG, bundle_id

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = ["BUNDLE_FORMAT", "MANIFEST", "Bundle", "BundleError", "open_bundle", "sha256_of"]

MANIFEST = "manifest.json"
BUNDLE_FORMAT = 1
_REQUIRED_KEYS = ("format", "model", "k", "codec", "expected", "files", "head", "tail", "dataset")


class BundleError(UserError):
    """A bundle that is missing, malformed or altered: it must not be served or run."""


@dataclass(frozen=True)
class Bundle:
    """A bundle whose files matched their sha256 when it was opened (or one configuration of it)."""

    root: Path
    manifest: dict[str, Any]
    codec: Codec
    tag: int = 0  # the configuration tag its payloads carry
    configs: tuple[Bundle, ...] = ()  # an adaptive bundle's configurations (empty: a single one)

    @property
    def configurations(self) -> tuple[Bundle, ...]:
        """One Bundle per configuration, by tag (a single-configuration bundle: itself)."""
        return self.configs or (self,)

    def configuration(self, tag: int) -> Bundle:
        for config in self.configurations:
            if config.tag == tag:
                return config
        raise BundleError(f"bundle {self.name} has no configuration tag {tag}; it holds {self.tags}")

    @property
    def tags(self) -> list[int]:
        return [c.tag for c in self.configurations]

    @property
    def policy(self) -> Policy | None:
        """The rate -> configuration policy of an adaptive bundle (None for a single configuration)."""
        doc = self.manifest.get("policy")
        return None if doc is None else policy_of(doc, set(self.tags))

    @property
    def name(self) -> str:
        return str(self.manifest.get("name", self.root.name))

    @property
    def k(self) -> int:
        return int(self.manifest["k"])

    @property
    def input_size(self) -> int:
        return int(self.manifest["model"]["input_size"])

    @property
    def preprocessing(self) -> Preprocessing:
        """What the model expects of its input (bundles before 0.4 named a path instead)."""
        stored = self.manifest["model"].get("preprocessing")
        if stored is not None:
            return Preprocessing.from_json(stored)
        return legacy_preprocessing(str(self.manifest["dataset"].get("preprocess")))

    @property
    def image_mode(self) -> str:
        """How the device captures images: ``L`` (grey) or ``RGB``, as the study's dataset holds them."""
        mode = self.manifest["dataset"].get("image_mode")
        if mode is None:  # bundles before 0.4: Fashion-MNIST's path was grey, image folders' RGB
            mode = "L" if self.manifest["dataset"].get("preprocess") == "grey" else "RGB"
        return str(mode)

    @property
    def classes(self) -> list[str]:
        return list(self.manifest["model"]["classes"])

    @property
    def max_payload_bytes(self) -> int:
        return int(self.manifest["limits"]["max_payload_bytes"])

    @property
    def identity(self) -> str:
        """What the device sends once per connection (stream) or with each request (HTTP header
        ``X-Split-Opt-Bundle``): the SHA-256 of manifest.json, which pins every other file."""
        return bundle_id((self.root / MANIFEST).read_bytes())

    def file(self, role: str) -> Path | None:
        """The path of the ``head`` or ``tail`` graph, or None where this split has none."""
        name = self.manifest[role]["file"]
        return None if name is None else self.root / name


def _read_manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST
    if not path.is_file():
        raise BundleError(f"{root} is not a bundle: {MANIFEST} is missing; create one with `split-opt export`")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path} is not valid JSON ({exc}); re-export the bundle") from exc
    missing = [key for key in _REQUIRED_KEYS if not isinstance(manifest, dict) or key not in manifest]
    if missing:
        raise BundleError(f"{path} lacks {', '.join(missing)}; re-export the bundle with `split-opt export`")
    if manifest["format"] != BUNDLE_FORMAT:
        raise BundleError(f"{path} has bundle format {manifest['format']}, this build reads {BUNDLE_FORMAT}")
    return manifest


def check_files(root: Path, manifest: dict[str, Any]) -> None:
    """Every file the manifest lists exists and has its recorded sha256; else BundleError."""
    problem = unpinned(root, manifest["files"])
    if problem is None:
        return
    name, actual = problem
    if actual is None:
        raise BundleError(f"bundle file {name} listed in {root / MANIFEST} is missing; re-export the bundle")
    raise BundleError(
        f"bundle file {root / name} has sha256 {actual[:16]}..., the manifest says {manifest['files'][name][:16]}...: "
        "the bundle was altered; re-export it or restore the file"
    )


def _load_codec(root: Path, manifest: dict[str, Any]) -> Codec:
    codec_file = root / manifest["codec"]["state_file"]
    try:
        codec = load_codec(codec_file)
    except CodecError as exc:
        raise BundleError(str(exc)) from exc
    if codec.state_hash().hex() != manifest["codec"]["state_hash"]:
        raise BundleError(f"codec state {codec_file} is not the one the manifest names; re-export the bundle")
    return codec


def _configurations(root: Path, manifest: dict[str, Any]) -> tuple[Bundle, ...]:
    """An adaptive manifest's configurations, each a Bundle of the top level merged with its own keys."""
    common = {k: v for k, v in manifest.items() if k not in ("configurations", "policy")}
    views, seen = [], set()
    for entry in manifest["configurations"]:
        tag = entry.get("tag") if isinstance(entry, dict) else None
        if not isinstance(tag, int) or not 0 <= tag <= MAX_TAG or tag in seen:
            raise BundleError(f"{root / MANIFEST} has a configuration tag {tag!r}: tags are distinct, 0..{MAX_TAG}")
        seen.add(tag)
        view = {**common, **entry}
        views.append(Bundle(root, view, _load_codec(root, view), tag))
    if 0 not in seen:
        raise BundleError(f"{root / MANIFEST} has no configuration tag 0; re-export the bundle")
    return tuple(sorted(views, key=lambda v: v.tag))


def open_bundle(root: Path, trust_key: Ed25519PublicKey | None = None) -> Bundle:
    """Read the manifest, check every file's sha256, and load the codec state(s); BundleError if any
    fails. With ``trust_key``, the manifest must first carry a valid signature by that key (see _signing)."""
    root = Path(root)
    if trust_key is not None:
        from optimizer.deploy._signing import verify_manifest

        verify_manifest(root, trust_key)
    manifest = _read_manifest(root)
    check_files(root, manifest)
    if "configurations" not in manifest:
        return Bundle(root, manifest, _load_codec(root, manifest))
    configs = _configurations(root, manifest)
    bundle = Bundle(root, manifest, configs[0].codec, 0, configs)
    if "policy" in manifest:
        bundle.policy  # noqa: B018  # a malformed policy is refused when the bundle opens
    return bundle
