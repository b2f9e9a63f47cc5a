"""Deployment: a study's configuration as a bundle (head.onnx, codec state, tail.onnx, manifest),
the device half that turns images into payloads, the HTTP server that turns payloads into
predictions, and the check of a bundle against its manifest.

Uses models, data and codecs; never the search, the report or the profiler (the CLI reads the study
and hands this package a model and a fitted codec).
"""

from __future__ import annotations

from optimizer.deploy._bundle import MANIFEST, Bundle, BundleError, open_bundle, sha256_of
from optimizer.deploy._export import ExportSpec, export_bundle
from optimizer.deploy._halves import DeviceHalf, Encoded, Prediction, ServerHalf, load_image

__all__ = [
    "MANIFEST",
    "Bundle",
    "BundleError",
    "DeviceHalf",
    "Encoded",
    "ExportSpec",
    "Prediction",
    "ServerHalf",
    "export_bundle",
    "load_image",
    "open_bundle",
    "sha256_of",
]
