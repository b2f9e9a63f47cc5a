"""Signed bundles: an Ed25519 signature over manifest.json, checked against a trusted public key.

The manifest pins every other file by its sha256 (see _bundle), so a valid signature over its
exact bytes vouches for the whole bundle. ``split-opt keygen`` writes a key pair, ``export
--sign-key`` writes the signature next to the manifest, and ``serve``/``infer``/``verify
--trust-key`` refuse a bundle whose signature is missing, malformed, by another key, or no longer
matches the manifest. Without a trust key, signed and unsigned bundles are opened alike.

    manifest.sig   {"format": 1, "algorithm": "ed25519", "key_id": "...", "signature": "<base64>"}

The key id is the first 16 hex digits of the SHA-256 of the raw 32-byte public key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from optimizer.deploy._bundle import MANIFEST, BundleError
from optimizer.errors import UserError

__all__ = [
    "SIGNATURE",
    "generate_keypair",
    "key_id",
    "load_private_key",
    "load_public_key",
    "sign_manifest",
    "verify_manifest",
]

SIGNATURE = "manifest.sig"
_FORMAT = 1


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_keypair(private_path: Path, force: bool = False) -> tuple[Path, Path, str]:
    """Write PRIVATE (PEM, PKCS#8, readable by its owner only) and PRIVATE.pub; (paths, key id)."""
    private_path = Path(private_path)
    public_path = private_path.with_name(private_path.name + ".pub")
    for path in (private_path, public_path):
        if path.exists() and not force:
            raise UserError(f"{path} already exists; pass --force to replace it, or choose another --out")
    private_path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    private_path.unlink(missing_ok=True)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    public = key.public_key()
    public_path.write_bytes(
        public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return private_path, public_path, key_id(public)


def _read(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read the {what} {path} ({exc.strerror or exc})") from exc


def load_private_key(path: Path) -> Ed25519PrivateKey:
    data = _read(path, "signing key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise UserError(f"{path} is not an unencrypted PEM private key; make one with `split-opt keygen`") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise UserError(f"{path} is not an Ed25519 key; make one with `split-opt keygen`")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    data = _read(path, "trust key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise UserError(f"{path} is not a PEM public key; give the .pub file that `split-opt keygen` wrote") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise UserError(f"{path} is not an Ed25519 public key; give the .pub file that `split-opt keygen` wrote")
    return key


def sign_manifest(root: Path, key: Ed25519PrivateKey) -> str:
    """Sign ROOT/manifest.json as it is on disk; write ROOT/manifest.sig; return the key id."""
    manifest = (Path(root) / MANIFEST).read_bytes()
    doc = {
        "format": _FORMAT,
        "algorithm": "ed25519",
        "key_id": key_id(key.public_key()),
        "signature": base64.b64encode(key.sign(manifest)).decode(),
    }
    (Path(root) / SIGNATURE).write_text(json.dumps(doc, indent=2) + "\n")
    return str(doc["key_id"])


def verify_manifest(root: Path, trusted: Ed25519PublicKey) -> str:
    """The key id if ROOT/manifest.sig is a valid signature of ROOT/manifest.json by ``trusted``; else BundleError."""
    root = Path(root)
    path = root / SIGNATURE
    if not path.is_file():
        raise BundleError(
            f"bundle {root} is not signed ({SIGNATURE} is missing) and a trust key was given; "
            "export it with --sign-key, or drop --trust-key"
        )
    try:
        doc = json.loads(path.read_text())
        signature = base64.b64decode(doc["signature"], validate=True)
        signer = str(doc["key_id"])
        if doc.get("algorithm") != "ed25519" or doc.get("format") != _FORMAT:
            raise ValueError(f"algorithm {doc.get('algorithm')!r}, format {doc.get('format')!r}")
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise BundleError(f"{path} is not a split-opt signature ({exc}); re-export the bundle with --sign-key") from exc
    trusted_id = key_id(trusted)
    if signer != trusted_id:
        raise BundleError(f"bundle {root} is signed by key {signer}, not by the trusted key {trusted_id}; refusing it")
    manifest = (root / MANIFEST).read_bytes() if (root / MANIFEST).is_file() else b""
    try:
        trusted.verify(signature, manifest)
    except InvalidSignature:
        raise BundleError(
            f"the signature of bundle {root} does not match its {MANIFEST}: the manifest was altered "
            "after signing, or another key signed it; refusing it"
        ) from None
    return trusted_id
