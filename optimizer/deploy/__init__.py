"""Deployment: a study's configuration as a bundle (head.onnx, codec state, tail.onnx, manifest), or
several with a rate -> configuration policy (an adaptive bundle, and the device that follows it),
the device half that turns images into payloads, the HTTP server that turns payloads into
predictions, and the check of a bundle against its manifest.

Uses models, data and codecs; never the search, the report or the profiler (the CLI reads the study
and hands this package a model and a fitted codec).

The run-time modules (bundle, halves, client, server, stream) import no torch, so that the device
install (packaging/device) runs them; export, which needs torch, is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from optimizer.deploy._adaptive import AdaptiveOptions, run_adaptive
from optimizer.deploy._bundle import MANIFEST, Bundle, BundleError, open_bundle, sha256_of
from optimizer.deploy._configs import ServerHalves
from optimizer.deploy._halves import DeviceHalf, Encoded, Prediction, ServerHalf, load_image
from optimizer.deploy._policy import Policy, PolicyRange
from optimizer.deploy._trace import FrameRecord, SwitchRecord, Trace

if TYPE_CHECKING:
    from optimizer.deploy._export import ExportSpec, export_bundle

__all__ = [
    "MANIFEST",
    "AdaptiveOptions",
    "Bundle",
    "BundleError",
    "DeviceHalf",
    "Encoded",
    "ExportSpec",
    "FrameRecord",
    "Policy",
    "PolicyRange",
    "Prediction",
    "ServerHalf",
    "ServerHalves",
    "SwitchRecord",
    "Trace",
    "export_bundle",
    "load_image",
    "open_bundle",
    "run_adaptive",
    "sha256_of",
]


def __getattr__(name: str) -> Any:
    """``ExportSpec`` and ``export_bundle`` load torch, so they are imported when first asked for."""
    if name in ("ExportSpec", "export_bundle"):
        from optimizer.deploy import _export

        return getattr(_export, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
