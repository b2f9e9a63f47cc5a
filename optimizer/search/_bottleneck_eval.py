"""The trained bottlenecks an evaluator scores: loaded once, checked against the configuration.

A bottleneck configuration runs head -> encoder (device side; its MACs count towards the device
latency) -> rounded latent -> the bottleneck codec (ANS, the payload) -> decoder -> tail (server).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from optimizer.codecs import BottleneckCodec, make_codec
from optimizer.errors import UserError
from optimizer.models import LoadedBottleneck, hyperprior_arrays, load_bottleneck, prior_tables

__all__ = ["BottleneckParts"]

_BATCH = 250


class BottleneckParts:
    """Loaded bottlenecks by weight file, and the codecs built from their priors."""

    def __init__(self) -> None:
        self._loaded: dict[str, LoadedBottleneck] = {}

    def get(self, params: dict[str, Any]) -> LoadedBottleneck:
        """The bottleneck a configuration names (the search offers one only at the model, input size
        and split its card names; see search._models.place_bottlenecks)."""
        path = str(params["file"])
        if path not in self._loaded:
            self._loaded[path] = load_bottleneck(path)
        bn = self._loaded[path]
        if params.get("weights_sha256", bn.sha256) != bn.sha256:
            raise UserError(f"bottleneck {path} changed since the search space was read (SHA-256 differs); re-run")
        return bn

    def codec(self, bn: LoadedBottleneck, params: dict[str, Any]) -> BottleneckCodec:
        """The codec whose model is the bottleneck's prior, tabulated (with a hyperprior: its side
        nets and the side latent's prior, tabulated)."""
        codec = make_codec(params, tuple(bn.module.spec.latent_shape))
        assert isinstance(codec, BottleneckCodec)
        hyper = bn.module.hyper
        if hyper is not None:
            return codec.fit_hyperprior(hyperprior_arrays(hyper), *prior_tables(hyper.side_prior))
        assert bn.module.prior is not None
        return codec.fit_prior(*prior_tables(bn.module.prior))

    @staticmethod
    @torch.no_grad()
    def latents(bn: LoadedBottleneck, acts: np.ndarray) -> np.ndarray:
        """Head activations (N, C, H, W) -> rounded latents (N, L, h, w), as the device computes them.
        The engine's caches may hold float16 activations: they are widened first."""
        x = torch.from_numpy(np.ascontiguousarray(acts, dtype=np.float32))
        out = [bn.module.latent(x[i : i + _BATCH]) for i in range(0, len(x), _BATCH)]
        return torch.cat(out).numpy()

    @staticmethod
    @torch.no_grad()
    def reconstruct(bn: LoadedBottleneck, latents: np.ndarray) -> np.ndarray:
        """Decoded latents -> the activation the tail receives (server side)."""
        x = torch.from_numpy(np.ascontiguousarray(latents, dtype=np.float32))
        return torch.cat([bn.module.decode(x[i : i + _BATCH]) for i in range(0, len(x), _BATCH)]).numpy()


def coded_scores(evaluator: Any, bn: LoadedBottleneck, spec: str, k: int, split: str = "val") -> dict[str, float]:
    """Accuracy and payload bytes of a trained bottleneck through the real codec (the search's
    evaluation engine: ONNX Runtime head and tail, ANS payloads), for its model card."""
    from optimizer.search._engine import Config

    params = {"kind": "bottleneck", "file": str(bn.path), "weights_sha256": bn.sha256, "beta": bn.beta}
    result = evaluator.evaluate(Config.make(spec, bn.input_size, k, params), split)
    return {
        f"{split}_accuracy_coded": round(result.accuracy, 4),
        "payload_bytes_mean": round(float(result.payload_bytes.mean()), 1),
        "payload_bytes_p95": float(np.percentile(result.payload_bytes, 95)),
        "coded_samples": len(result.correct),
    }
