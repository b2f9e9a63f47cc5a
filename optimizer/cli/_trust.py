"""The trust options of ``serve``, ``infer`` and ``verify`` (token, TLS, signing keys, load limits),
and ``split-opt keygen``. Kept apart from the commands themselves: each command adds its group here
and reads back what it needs."""

from __future__ import annotations

import argparse
import ipaddress
import ssl
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from optimizer.cli._common import positive_int
from optimizer.errors import UserError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from optimizer.deploy._limits import ServeOptions

__all__ = [
    "add_client_trust_args",
    "add_keygen_parser",
    "add_serve_trust_args",
    "add_trust_key_arg",
    "client_settings",
    "is_loopback",
    "serve_settings",
    "trust_key",
]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value:g}")
    return value


def _non_negative_float(text: str) -> float:
    return 0.0 if text.strip() in ("0", "0.0") else _positive_float(text)


def add_trust_key_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trust-key",
        type=Path,
        default=None,
        help="a public key (KEY.pub from `split-opt keygen`): refuse the bundle unless its manifest is signed by it",
    )


def add_serve_trust_args(serve: argparse.ArgumentParser) -> None:
    group = serve.add_argument_group("authentication, TLS and load")
    group.add_argument(
        "--token-file",
        type=Path,
        default=None,
        help="require `Authorization: Bearer TOKEN` (the file's one line) on every route but /healthz",
    )
    group.add_argument("--tls-cert", type=Path, default=None, help="serve HTTPS with this PEM certificate (chain)")
    group.add_argument("--tls-key", type=Path, default=None, help="the PEM private key of --tls-cert")
    group.add_argument(
        "--insecure",
        action="store_true",
        help="allow a non-loopback --host without --token-file (anyone who reaches the port may use it)",
    )
    add_trust_key_arg(group)  # type: ignore[arg-type]
    group.add_argument(
        "--max-concurrent",
        type=positive_int,
        default=256,
        help="inference requests in progress or queued at once; more are answered 429 (default: %(default)s)",
    )
    group.add_argument(
        "--request-timeout",
        type=_positive_float,
        default=10.0,
        help="seconds per inference request before it is answered 503 (default: %(default)s)",
    )
    group.add_argument(
        "--max-batch",
        type=positive_int,
        default=32,
        help="concurrent requests run through the tail in one call; 1 turns batching off (default: %(default)s)",
    )
    group.add_argument(
        "--batch-window-ms",
        type=_non_negative_float,
        default=2.0,
        help="how long a batch that is not full waits for more concurrent requests (default: %(default)s)",
    )


def add_client_trust_args(infer: argparse.ArgumentParser) -> None:
    group = infer.add_argument_group("authentication and TLS")
    group.add_argument("--token-file", type=Path, default=None, help="send the token in this file (bearer)")
    group.add_argument(
        "--ca-cert",
        type=Path,
        default=None,
        help="trust this PEM certificate (or CA) for an https:// --url (default: the system's authorities)",
    )
    group.add_argument(
        "--insecure",
        action="store_true",
        help="allow sending the token over plain http:// to a host that is not loopback",
    )
    add_trust_key_arg(group)  # type: ignore[arg-type]


def trust_key(args: argparse.Namespace) -> Ed25519PublicKey | None:
    if getattr(args, "trust_key", None) is None:
        return None
    try:
        from optimizer.deploy._signing import load_public_key
    except ImportError as exc:  # the device install without its `signed` extra
        raise UserError(
            f"--trust-key needs the cryptography package ({exc}); pip install cryptography "
            "(or the device install's extra: split-opt-device[signed])"
        ) from exc

    return load_public_key(args.trust_key)


def _tls(args: argparse.Namespace) -> dict[str, str]:
    if (args.tls_cert is None) != (args.tls_key is None):
        raise UserError("give both --tls-cert and --tls-key (or neither)")
    if args.tls_cert is None:
        return {}
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(args.tls_cert, args.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise UserError(
            f"cannot use --tls-cert {args.tls_cert} with --tls-key {args.tls_key} ({exc}); give a PEM "
            "certificate and its private key"
        ) from exc
    return {"ssl_certfile": str(args.tls_cert), "ssl_keyfile": str(args.tls_key)}


def serve_settings(args: argparse.Namespace) -> tuple[ServeOptions, dict[str, str]]:
    """The server's options and uvicorn's TLS arguments; UserError for an unsafe or broken set-up."""
    from optimizer.deploy._auth import read_token
    from optimizer.deploy._limits import ServeOptions

    token = read_token(args.token_file) if args.token_file is not None else None
    tls = _tls(args)
    if not is_loopback(args.host):
        if token is None and not args.insecure:
            raise UserError(
                f"--host {args.host} is reachable from the network: give --token-file (and --tls-cert/--tls-key), "
                "or pass --insecure to serve anyone who reaches the port"
            )
        if token is not None and not tls:
            sys.stderr.write(f"split-opt: warning: the token travels in clear text on {args.host}; add --tls-cert\n")
    options = ServeOptions(
        token=token,
        max_concurrent=args.max_concurrent,
        timeout_s=args.request_timeout,
        max_batch=args.max_batch,
        batch_window_ms=args.batch_window_ms,
    )
    return options, tls


def client_settings(args: argparse.Namespace) -> dict[str, Any]:
    """RemoteServer's keyword arguments: the token and how to check the server's certificate."""
    from optimizer.deploy._auth import read_token

    token = read_token(args.token_file) if args.token_file is not None else None
    url = urlsplit(args.url)
    if url.scheme not in ("http", "https"):
        raise UserError(f"--url {args.url} must start with http:// or https://")
    if token is not None and url.scheme == "http" and not is_loopback(url.hostname or "") and not args.insecure:
        raise UserError(
            f"refusing to send the token in clear text to {url.hostname}; use an https:// --url, or --insecure"
        )
    verify: ssl.SSLContext | bool = True
    if args.ca_cert is not None:
        try:
            verify = ssl.create_default_context(cafile=str(args.ca_cert))
        except (OSError, ssl.SSLError) as exc:
            raise UserError(f"cannot read --ca-cert {args.ca_cert} ({exc}); give a PEM certificate") from exc
    return {"token": token, "verify": verify}


def add_keygen_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "keygen",
        help="make an Ed25519 key pair for signing bundles (export --sign-key, serve/infer/verify --trust-key)",
        description="Write OUT (the private key, PEM, readable by you only: keep it where bundles are "
        "exported) and OUT.pub (the public key: give it to every server and device as --trust-key).",
    )
    p.add_argument("--out", type=Path, required=True, help="the private key file to write, e.g. keys/release")
    p.add_argument("--force", action="store_true", help="replace an existing key pair")
    p.set_defaults(func=_keygen)


def _keygen(args: argparse.Namespace) -> int:
    from optimizer.deploy._signing import generate_keypair

    private, public, key_id = generate_keypair(args.out, args.force)
    print(f"wrote {private} (private: keep it secret) and {public} (public: --trust-key); key id {key_id}")
    return 0
