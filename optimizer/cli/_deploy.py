"""``split-opt serve``, ``infer`` and ``verify``: a bundle's server half, device half, and check."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from optimizer.cli._common import add_format, emit_json, positive_int, table
from optimizer.cli._infer_adaptive import add_adaptive_infer_args, infer_adaptive
from optimizer.cli._trust import (
    add_client_trust_args,
    add_serve_trust_args,
    add_trust_key_arg,
    client_settings,
    is_loopback,
    serve_settings,
    trust_key,
)
from optimizer.errors import UserError

__all__ = ["add_deploy_parsers"]


def add_deploy_parsers(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser(
        "serve",
        help="serve a bundle's tail over HTTP (POST /v1/infer, GET /healthz, GET /v1/manifest)",
        description="Check the bundle's files against their sha256, then answer POST /v1/infer (one "
        "payload, application/octet-stream) with the class index, label and score.",
    )
    serve.add_argument("bundle", type=Path, help="a bundle folder written by `split-opt export`")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    serve.add_argument("--port", type=int, default=8000)
    add_serve_trust_args(serve)
    serve.set_defaults(func=_serve)

    infer = sub.add_parser(
        "infer",
        help="the device half: run head.onnx on images, send the payloads, print the predictions",
        description="For each image: preprocess as the dataset does, run head.onnx (onnxruntime), "
        "entropy-code, send to the server; print the prediction, bytes sent and the time in head, "
        "coding and network.",
    )
    infer.add_argument("bundle", type=Path, help="a bundle folder written by `split-opt export`")
    infer.add_argument("images", type=Path, nargs="+", metavar="IMAGE", help="PNG or JPEG files")
    infer.add_argument("--url", default="http://127.0.0.1:8000", help="the server (default: %(default)s)")
    infer.add_argument("--local", action="store_true", help="run the server half in this process instead")
    infer.add_argument(
        "--stream",
        action="store_true",
        help="send over one persistent WebSocket (8 bytes of framing per image instead of ~200 of HTTP headers)",
    )
    add_adaptive_infer_args(infer)
    add_client_trust_args(infer)
    add_format(infer)
    infer.set_defaults(func=_infer)

    verify = sub.add_parser(
        "verify",
        help="check a bundle's hashes and that it reproduces the study's test accuracy and payload",
        description="Check every file's sha256, run the test split through both halves, and confirm "
        "that accuracy and mean payload agree with the manifest within the 95 %% interval (exit 1 if not).",
    )
    verify.add_argument("bundle", type=Path, help="a bundle folder written by `split-opt export`")
    verify.add_argument("--dataset", default=None, help="override the dataset spec recorded in the manifest")
    verify.add_argument("--limit", type=positive_int, default=None, help="use only the first N test images")
    add_trust_key_arg(verify)
    add_format(verify)
    verify.set_defaults(func=_verify)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from optimizer.deploy import open_bundle  # deploy (onnxruntime, FastAPI) loads only when used
    from optimizer.deploy._server import create_app

    options, tls = serve_settings(args)  # an unsafe set-up (open port, no token) stops here
    bundle = open_bundle(args.bundle, trust_key(args))  # a tampered or unsigned bundle stops here: one line, exit 2
    app = create_app(bundle, options)
    where = "" if is_loopback(args.host) else " (NOT loopback: reachable from the network)"
    guard = ", token required" if options.token else ""
    sys.stderr.write(
        f"split-opt: serving bundle {bundle.name} (k={bundle.k}, codec {bundle.codec.kind}) on "
        f"{'https' if tls else 'http'}://{args.host}:{args.port}{where}{guard}; Ctrl-C stops\n"
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False, **tls)  # type: ignore[arg-type]
    return 0


def _infer(args: argparse.Namespace) -> int:
    from optimizer.deploy import open_bundle  # deploy (onnxruntime, FastAPI) loads only when used
    from optimizer.deploy._client import LocalServer, infer_images

    if args.local and args.stream:
        raise UserError("--local runs the server half in this process, --stream talks to a server: give one of them")
    if (args.fps is not None or args.config is not None) and not args.adaptive:
        raise UserError("--fps and --config are for an adaptive bundle's frames; add --adaptive")
    if args.adaptive and args.local:
        raise UserError("--adaptive follows the link to a server; --local has none: drop one of them")
    bundle = open_bundle(args.bundle, trust_key(args))
    server = LocalServer(bundle) if args.local else _remote(args, bundle)
    transport = "local" if args.local else "stream" if args.stream else "http"
    try:
        if args.adaptive:
            return infer_adaptive(args, bundle, server, transport)
        results = infer_images(bundle, args.images, server)
    finally:
        server.close()
    doc = {"bundle": bundle.name, "url": None if args.local else args.url, "transport": transport}
    doc["results"] = [r.to_json() for r in results]
    if args.format == "json":
        emit_json(doc)
    else:
        _print_infer(doc)
    return 0


def _remote(args: argparse.Namespace, bundle: Any) -> Any:
    """The server at --url, over HTTP or (--stream) one WebSocket, with the token and TLS settings."""
    from optimizer.deploy._client import RemoteServer

    settings = client_settings(args)
    if not args.stream:
        return RemoteServer(args.url, bundle.identity, **settings)
    from optimizer.deploy._stream import StreamServer  # websocket-client loads only for --stream

    return StreamServer(args.url, bundle, token=settings["token"], verify=settings["verify"])


def _print_infer(doc: dict[str, Any]) -> None:
    rows = [
        [
            r["image"],
            str(r["class_index"]),
            r["label"],
            "-" if r["score"] is None else f"{r['score']:.3f}",
            str(r["payload_bytes"]),
            f"{r['head_ms']:.2f}",
            f"{r['coding_ms']:.2f}",
            f"{r['network_ms']:.2f}",
        ]
        for r in doc["results"]
    ]
    print(table(rows, ["image", "class", "label", "score", "bytes sent", "head ms", "coding ms", "network ms"]))


def _verify(args: argparse.Namespace) -> int:
    from optimizer.deploy import open_bundle  # deploy (onnxruntime, FastAPI) loads only when used
    from optimizer.deploy._verify import verify_bundle

    bundle = open_bundle(args.bundle, trust_key(args))
    results = [(config.tag, verify_bundle(config, args.dataset, args.limit)) for config in bundle.configurations]
    ok = all(result.ok for _, result in results)
    doc = {"bundle": bundle.name, "hashes_ok": True, **results[0][1].to_json(), "ok": ok}
    if bundle.configs:  # an adaptive bundle: every configuration against its own expectations
        doc["configurations"] = [{"tag": tag, **result.to_json()} for tag, result in results]
    if args.format == "json":
        emit_json(doc)
    else:
        print(f"{bundle.name}: every file matches its sha256")
        for tag, result in results:
            _print_verify(result, f"tag {tag}: " if bundle.configs else "")
    if not ok:
        sys.stderr.write(
            f"split-opt: bundle {bundle.name} does not reproduce its manifest within the 95 % interval; "
            "re-export it from the study, or check that --dataset is the study's data\n"
        )
        return 1
    return 0


def _print_verify(result: Any, prefix: str) -> None:
    lo, hi = result.accuracy_ci
    plo, phi = result.payload_bytes_ci
    print(
        f"{prefix}accuracy {result.accuracy:.4f} [{lo:.4f}, {hi:.4f}] on {result.samples} test images; the study "
        f"measured {result.expected_accuracy:.4f}: {'agrees' if result.accuracy_ok else 'DISAGREES'}"
    )
    print(
        f"{prefix}mean payload {result.payload_bytes_mean:.1f} B [{plo:.1f}, {phi:.1f}]; the study measured "
        f"{result.expected_payload_bytes_mean:.1f} B: {'agrees' if result.payload_ok else 'DISAGREES'}"
    )
