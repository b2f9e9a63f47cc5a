"""The evaluation engine: what one configuration scores, with every reusable piece cached.

A configuration is (alpha, input size, k, codec params). Scoring it on a split means: the head's
activations for that split (cached in memory and, for calib and val, on disk per (weights file,
alpha, size, k, split)), a codec fitted on the calib activations (one PCA basis per (model, k,
geometry) shared by every component count, bit width and coder), then one encode/decode per image
and one batched tail forward. A trial therefore costs about one tail forward over val. Heads and
tails run in ONNX Runtime (see models._runtime): the same function as PyTorch, 2-4x faster.

# NOTE: activations (not the logits of k = n + 1) are kept as float16 in both caches and widened
# when used, so a result is the same whether they were computed now or read back from disk. The disk cache is capped
# (``SPLIT_OPT_CACHE_MAX_GB``, default 4): the least recently written files go first.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import OrderedDict
from dataclasses import dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from optimizer.codecs import Codec, PrincipalBasis, Work, make_codec
from optimizer.data import DataSplits, ImageDataset, decoded_image_input
from optimizer.models import LoadedModel, OnnxRunner, build_head, build_tail, load_model, weights_for_alpha
from optimizer.search._bottleneck_eval import BottleneckParts

__all__ = ["Config", "Evaluation", "Evaluator"]

_BATCH = 250
_MAX_BASES = 4  # each holds its calib vectors: up to a few hundred MB at the earliest splits
_CACHE_FORMAT = 2  # bump when the cached activations' meaning changes (2: heads run by ONNX Runtime)
# Exported runners kept: tails are reused by every trial at their split; a head only until its
# split's activations are cached. Each holds its part's weights (at most ~10 MB here).
_MAX_RUNNERS = {"head": 4, "tail": 48}
_DISK_SPLITS = ("calib", "val")  # the test split is scored once, not worth the disk


@dataclass(frozen=True)
class Config:
    alpha: float
    input_size: int
    k: int
    codec: tuple[tuple[str, Any], ...] = field(default=())

    @property
    def codec_params(self) -> dict[str, Any]:
        return dict(self.codec)

    @staticmethod
    def make(alpha: float, input_size: int, k: int, codec: dict[str, Any]) -> Config:
        return Config(float(alpha), int(input_size), int(k), tuple(sorted(codec.items())))


@dataclass(frozen=True)
class Evaluation:
    correct: np.ndarray  # bool per image of the split
    payload_bytes: np.ndarray  # len(payload) per image
    device_work: Work  # the codec's device-side work for one payload (a learned encoder included)
    server_work: Work  # its server-side work (a learned decoder included)

    @property
    def encode_macs(self) -> int:
        """Device-side MACs of the codec (projection or learned encoder; 0 where there is none)."""
        return self.device_work.total_macs

    @property
    def accuracy(self) -> float:
        return float(self.correct.mean())


class Evaluator:
    """Scores configurations of one search space on one dataset; owns every cache."""

    def __init__(
        self,
        dataset: ImageDataset,
        splits: DataSplits,
        weights: str,
        num_samples: dict[str, int],
        cache_dir: Path | None = None,
        max_cached_activations: int = 8,
    ) -> None:
        self.dataset, self.splits, self.weights = dataset, splits, weights
        self.num_samples = num_samples
        self.cache_dir = cache_dir
        self._models: dict[float, LoadedModel] = {}
        self._runners: OrderedDict[tuple[str, float, int, int], OnnxRunner] = OrderedDict()
        self._inputs: dict[tuple[int, str], torch.Tensor] = {}
        self._acts: OrderedDict[tuple[float, int, int, str], np.ndarray] = OrderedDict()
        self._max_acts = max_cached_activations
        self._codecs: dict[Config, Codec] = {}
        self._bases: OrderedDict[tuple[float, int, int, str, int], PrincipalBasis] = OrderedDict()
        self.bottlenecks = BottleneckParts()

    # --- cached pieces -----------------------------------------------------------------------
    def indices(self, split: str) -> np.ndarray:
        idx = self.splits[split]
        return idx[: self.num_samples[split]] if split in self.num_samples else idx

    def loaded(self, alpha: float) -> LoadedModel:
        if alpha not in self._models:
            kind = self.dataset.spec.split(":")[0]
            self._models[alpha] = load_model(alpha, weights_for_alpha(self.weights, alpha), kind)
        return self._models[alpha]

    def model(self, alpha: float, input_size: int) -> torch.nn.Module:
        """The model for ``alpha`` with the BatchNorm statistics of ``input_size``."""
        return self.loaded(alpha).at_size(input_size)

    def runner(self, part: str, alpha: float, size: int, k: int, sample_shape: tuple[int, ...]) -> OnnxRunner:
        """The head or tail at split k, exported once and run by ONNX Runtime (see models._runtime)."""
        key = (part, alpha, size, k)
        if key not in self._runners:
            model = self.model(alpha, size)
            module = build_head(model, k) if part == "head" else build_tail(model, k)
            self._runners[key] = OnnxRunner(module, sample_shape)
            same_part = [other for other in self._runners if other[0] == part]
            for old in same_part[: max(0, len(same_part) - _MAX_RUNNERS[part])]:
                del self._runners[old]
        self._runners.move_to_end(key)
        return self._runners[key]

    def inputs(self, size: int, split: str) -> torch.Tensor:
        if (size, split) not in self._inputs:
            self._inputs[(size, split)] = self.dataset.batch(self.indices(split), size)
        return self._inputs[(size, split)]

    def _disk_path(self, key: tuple[float, int, int, str]) -> Path | None:
        """The cache file of a split's activations, named by everything that determines them: the
        weights' SHA-256, the dataset's files (data._fingerprint), the images' indices, the
        preprocessing, and the torch and ONNX Runtime versions that export and run the head."""
        if self.cache_dir is None or key[3] not in _DISK_SPLITS:
            return None
        import onnxruntime

        from optimizer.data._fingerprint import dataset_fingerprint

        preprocessing = getattr(self.dataset, "preprocessing", None)
        ident = json.dumps(
            [
                _CACHE_FORMAT,
                "content-v1",
                self.loaded(key[0]).fingerprint,
                dataset_fingerprint(self.dataset),
                hashlib.sha256(np.ascontiguousarray(self.indices(key[3]), dtype="<i8").tobytes()).hexdigest(),
                type(self.dataset).__name__,
                repr(preprocessing) if is_dataclass(preprocessing) else None,
                torch.__version__,
                onnxruntime.__version__,
                *key,
            ]
        )
        return self.cache_dir / "activations" / (hashlib.sha256(ident.encode()).hexdigest()[:24] + ".npy")

    def activations(self, alpha: float, size: int, k: int, split: str) -> np.ndarray:
        """Head outputs (float32, whichever cache answers) for the split's images; memory LRU, then
        disk, then compute."""
        key = (alpha, size, k, split)
        if key in self._acts:
            self._acts.move_to_end(key)
            return self._acts[key].astype(np.float32)
        path = self._disk_path(key)
        if path is not None and path.is_file():
            acts = np.load(path, allow_pickle=False)
        else:
            x = self.inputs(size, split)
            acts = self.runner("head", alpha, size, k, tuple(x.shape[1:]))(x, _BATCH)
            if acts.ndim > 2:  # logits (k = n + 1) stay exact: the device takes their argmax itself
                acts = acts.astype(np.float16)
            if path is not None:
                _store(path, acts)
        self._acts[key] = acts
        while len(self._acts) > self._max_acts:
            self._acts.popitem(last=False)
        return acts.astype(np.float32)

    def codec(self, config: Config) -> Codec:
        """The configuration's codec, fitted on calib activations once."""
        if config not in self._codecs:
            params = config.codec_params
            if params["kind"] == "image":
                codec = make_codec(params, ())
            elif params["kind"] == "bottleneck":
                bn = self.bottlenecks.get(config.alpha, config.input_size, config.k, params)
                codec = self.bottlenecks.codec(bn, params)
            else:
                calib = self.activations(config.alpha, config.input_size, config.k, "calib")
                codec = make_codec(params, calib.shape[1:])
                if params["kind"] == "pca":
                    codec.fit(calib, basis=self._basis(config, calib))  # type: ignore[attr-defined]
                elif hasattr(codec, "fit"):
                    codec.fit(calib)
            self._codecs[config] = codec
        return self._codecs[config]

    def _basis(self, config: Config, calib: np.ndarray) -> PrincipalBasis:
        """One PCA per (model, split, geometry), shared by every (components, bits, coder)."""
        geometry = str(config.codec_params.get("geometry", "channel"))
        tile = int(config.codec_params.get("tile", 1)) if geometry == "tile" else 1
        key = (config.alpha, config.input_size, config.k, geometry, tile)
        if key not in self._bases:
            self._bases[key] = PrincipalBasis(calib, geometry, tile)
            while len(self._bases) > _MAX_BASES:
                self._bases.popitem(last=False)
        self._bases.move_to_end(key)
        return self._bases[key]

    # --- scoring -----------------------------------------------------------------------------
    def evaluate(self, config: Config, split: str = "val") -> Evaluation:
        codec = self.codec(config)
        labels = self.dataset.labels[self.indices(split)]
        if config.codec_params["kind"] == "image":
            return self._evaluate_image(config, codec, split, labels)
        if config.codec_params["kind"] == "bottleneck":
            return self._evaluate_bottleneck(config, codec, split, labels)
        acts = self.activations(config.alpha, config.input_size, config.k, split)
        payloads = [codec.encode(a) for a in acts]
        decoded = np.stack([codec.decode(p) for p in payloads]).astype(np.float32)
        logits = self._tail(config, decoded)
        shape = acts.shape[1:]
        sizes = np.array([len(p) for p in payloads])
        return Evaluation(logits.argmax(1) == labels, sizes, codec.device_work(shape), codec.server_work(shape))

    def _tail(self, config: Config, decoded: np.ndarray) -> np.ndarray:
        n = len(self.model(config.alpha, config.input_size).features)  # type: ignore[arg-type]
        if config.k == n + 1:
            return decoded  # the class-id codec decodes to a one-hot vector
        runner = self.runner("tail", config.alpha, config.input_size, config.k, decoded.shape[1:])
        return runner(decoded, _BATCH)

    def _evaluate_image(self, config: Config, codec: Codec, split: str, labels: np.ndarray) -> Evaluation:
        idx = self.indices(split)
        natives = [self.dataset.native(int(i)) for i in idx]
        payloads = [codec.encode(image) for image in natives]
        images = [codec.decode(p) for p in payloads]
        x = torch.stack([decoded_image_input(img, config.input_size) for img in images])
        logits = self._tail(config, x.numpy())
        shape = tuple(natives[0].shape) if natives else (config.input_size, config.input_size)
        sizes = np.array([len(p) for p in payloads])
        return Evaluation(logits.argmax(1) == labels, sizes, codec.device_work(shape), codec.server_work(shape))

    def _evaluate_bottleneck(self, config: Config, codec: Codec, split: str, labels: np.ndarray) -> Evaluation:
        """Head -> encoder -> rounded latent -> payload -> latent -> decoder -> tail."""
        bn = self.bottlenecks.get(config.alpha, config.input_size, config.k, config.codec_params)
        latents = self.bottlenecks.latents(bn, self.activations(config.alpha, config.input_size, config.k, split))
        payloads = [codec.encode(z) for z in latents]
        decoded = np.stack([codec.decode(p) for p in payloads])
        logits = self._tail(config, self.bottlenecks.reconstruct(bn, decoded))
        sizes = np.array([len(p) for p in payloads])
        # NOTE: the encoder (two convolutions, device) and decoder (two, server) run beside the codec.
        encoder = Work(macs={"conv": int(bn.card["encoder_macs"])}, layers=2, calls=0)
        decoder = Work(macs={"conv": int(bn.card["decoder_macs"])}, layers=2, calls=0)
        shape = tuple(latents.shape[1:])
        return Evaluation(
            logits.argmax(1) == labels, sizes, codec.device_work(shape) + encoder, codec.server_work(shape) + decoder
        )


def _store(path: Path, acts: np.ndarray) -> None:
    """Write one cache file atomically, then trim the cache to its size cap."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, acts)
        tmp.replace(path)
        files = sorted(path.parent.glob("*.npy"), key=lambda p: p.stat().st_mtime)
        cap = float(os.environ.get("SPLIT_OPT_CACHE_MAX_GB", "4")) * 1e9
        total = sum(p.stat().st_size for p in files)
        for old in files:
            if total <= cap or old == path:
                break
            total -= old.stat().st_size
            old.unlink(missing_ok=True)
    except OSError:
        pass  # a full or read-only disk costs recomputation, not the search
