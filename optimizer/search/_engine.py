"""The evaluation engine: what one configuration scores, with every reusable piece cached.

A configuration is (model spec, input size, split k, codec params). Scoring it on a split of the
data means: the head's activations at k (``_activations``: one forward of the model per input size
serves every split point, cached in memory and on disk), a codec fitted on the calib activations
(one PCA basis per (model, size, k, geometry) shared by every component count, bit width and
coder), then one encode/decode per image and one batched tail forward. A trial therefore costs
about one tail forward over val. Heads and tails are the model's torch.fx halves
(models.SplitGraph) run by ONNX Runtime (see models._runtime): the same function as PyTorch,
2-4x faster. Images reach every split through the model's own preprocessing (optimizer.imaging),
k = 0 included: the decoded image is resized and cropped exactly as the other splits' input.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from optimizer.codecs import ACTIVATION, INPUT, OUTPUT, Calib, Codec, FitContext, Site, Work, make_codec
from optimizer.data import DataSplits, ImageDataset, Preprocessing
from optimizer.errors import UserError
from optimizer.imaging import model_input
from optimizer.models import BuiltModel, GraphSplitPoint, OnnxRunner, SplitGraph, load_spec_model, split_graph
from optimizer.search._activations import ActivationStore, TapRequest
from optimizer.search._models import SpaceModel

__all__ = ["Config", "Evaluation", "Evaluator"]

_BATCH = 250
# What codec fits share (a PCA basis per split and geometry, a loaded bottleneck): a basis holds its
# calib vectors, up to a few hundred MB at the earliest splits.
_MAX_SHARED = 4
# Exported tails kept: each is reused by every trial at its split (each holds its part's weights).
_MAX_TAILS = 48
_MAX_INPUTS = 4  # preprocessed calib/val images per (preprocessing, size): up to ~100 MB each
_TEST_GROUP_BYTES = 1.5e9  # the test split's activations computed at once, per (model, size)


@dataclass(frozen=True)
class Config:
    model: str  # the canonical model spec
    input_size: int
    k: int
    codec: tuple[tuple[str, Any], ...] = field(default=())

    @property
    def codec_params(self) -> dict[str, Any]:
        return dict(self.codec)

    @staticmethod
    def make(model: str, input_size: int, k: int, codec: dict[str, Any]) -> Config:
        return Config(str(model), int(input_size), int(k), tuple(sorted(codec.items())))


@dataclass(frozen=True)
class Evaluation:
    correct: np.ndarray  # bool per image of the split
    payload_bytes: np.ndarray  # len(payload) per image
    device_work: Work  # the codec's device-side work for one payload (its device transform included)
    server_work: Work  # its server-side work (its server transform included)
    predicted: np.ndarray | None = None  # the predicted class per image

    @property
    def encode_macs(self) -> int:
        """Device-side MACs of the codec (a projection or a learned encoder; 0 where there is none)."""
        return self.device_work.total_macs

    @property
    def accuracy(self) -> float:
        return float(self.correct.mean())


class Evaluator:
    """Scores configurations of a search space's models on one dataset; owns every cache."""

    def __init__(
        self,
        dataset: ImageDataset,
        splits: DataSplits,
        models: dict[str, SpaceModel],
        num_samples: dict[str, int],
        cache_dir: Path | None = None,
    ) -> None:
        self.dataset, self.splits, self.models = dataset, splits, models
        self.num_samples = num_samples
        self.cache_dir = cache_dir
        self.store = ActivationStore(cache_dir)
        self._built: dict[str, BuiltModel] = {}
        self._graphs: dict[tuple[str, int], SplitGraph] = {}
        self._points: dict[tuple[str, int], list[GraphSplitPoint]] = {}
        self._tails: OrderedDict[tuple[str, int, int], OnnxRunner] = OrderedDict()
        self._taps_runners: OrderedDict[tuple[str, int, tuple[int, ...]], OnnxRunner] = OrderedDict()
        self._inputs: OrderedDict[tuple[str, int, str], np.ndarray] = OrderedDict()
        self._codecs: dict[Config, Codec] = {}
        self.fit_context = FitContext(max_shared=_MAX_SHARED)

    # --- models ------------------------------------------------------------------------------
    def space_model(self, spec: str) -> SpaceModel:
        if spec not in self.models:
            raise UserError(f"model {spec} is not in the search space (it has {', '.join(self.models)})")
        return self.models[spec]

    def built(self, spec: str) -> BuiltModel:
        """The model with its weights (loaded once)."""
        if spec not in self._built:
            kind = self.dataset.spec.split(":")[0]
            self._built[spec] = load_spec_model(spec, self.space_model(spec).weights, kind)
        return self._built[spec]

    def preprocessing(self, spec: str) -> Preprocessing:
        return self.built(spec).preprocessing

    def graph(self, spec: str, size: int) -> SplitGraph:
        """The model at ``size`` (with that size's BatchNorm statistics), traced with its split points."""
        if (spec, size) not in self._graphs:
            self._graphs[(spec, size)] = split_graph(spec, self.built(spec).at_size(size))
        return self._graphs[(spec, size)]

    def points(self, spec: str, size: int) -> list[GraphSplitPoint]:
        """Every split point's shape at ``size`` (MACs are the profiler's business)."""
        if (spec, size) not in self._points:
            self._points[(spec, size)] = self.graph(spec, size).points(size, macs=False)
        return self._points[(spec, size)]

    def last_k(self, spec: str) -> int:
        return self.space_model(spec).last_k

    # --- images and activations --------------------------------------------------------------
    def indices(self, split: str) -> np.ndarray:
        idx = self.splits[split]
        return idx[: self.num_samples[split]] if split in self.num_samples else idx

    def inputs(self, spec: str, size: int, split: str) -> np.ndarray:
        """The split's images as the model's input at ``size`` (calib and val kept; test not)."""
        prep = self.preprocessing(spec)
        key = (repr(prep), size, split)
        if key in self._inputs:
            self._inputs.move_to_end(key)
            return self._inputs[key]
        x = model_input(self.dataset.natives(self.indices(split)), size, prep)
        if split != "test":
            self._inputs[key] = x
            while len(self._inputs) > _MAX_INPUTS:
                self._inputs.popitem(last=False)
        return x

    def _taps(self, spec: str, size: int, split: str, ks: list[int]) -> list[np.ndarray]:
        """One forward over the split's images: the activations at ``ks`` (float16; the logits of the
        last split stay float32: the device takes their argmax itself)."""
        x = self.inputs(spec, size, split)
        key = (spec, size, tuple(ks))
        if key not in self._taps_runners:  # calib and val usually ask for the same ks: one export serves both
            self._taps_runners[key] = OnnxRunner(self.graph(spec, size).taps(ks), tuple(x.shape[1:]), outputs=len(ks))
            while len(self._taps_runners) > 2:
                self._taps_runners.popitem(last=False)
        runner = self._taps_runners[key]
        last = self.last_k(spec)
        return runner.run_all(x, _BATCH, [np.float32 if k == last else np.float16 for k in ks])

    def _identity(self, spec: str, size: int, split: str) -> list[object]:
        """What determines a split's activations besides the split point (the disk cache's key)."""
        import onnxruntime

        from optimizer.data._fingerprint import dataset_fingerprint

        indices = hashlib.sha256(np.ascontiguousarray(self.indices(split), dtype="<i8").tobytes()).hexdigest()
        built = self.built(spec)
        return [
            built.fingerprint,
            spec,
            dataset_fingerprint(self.dataset),
            indices,
            type(self.dataset).__name__,
            built.preprocessing.to_json(),
            torch.__version__,
            onnxruntime.__version__,
            size,
        ]

    def _bytes_per_k(self, spec: str, size: int, split: str) -> list[int]:
        n = len(self.indices(split))
        return [2 * p.elements * n for p in self.points(spec, size)]

    def activations(self, spec: str, size: int, k: int, split: str) -> np.ndarray:
        """Head outputs at split k (float32) for the split's images: memory, then disk, then one
        forward that also fills every other split of the space for this model and size."""
        request = TapRequest(
            key=(spec, size),
            ks=[kk for kk in self.space_model(spec).ks if kk > 0],
            names=self.space_model(spec).names,
            bytes_per_k=self._bytes_per_k(spec, size, split),
            identity=self._identity(spec, size, split),
            split=split,
            taps=lambda ks: self._taps(spec, size, split, ks),
        )
        return self.store.get(request, k)

    def tail(self, spec: str, size: int, k: int, sample_shape: tuple[int, ...]) -> OnnxRunner:
        """The tail at split k (k < last), exported once and run by ONNX Runtime."""
        key = (spec, size, k)
        if key not in self._tails:
            self._tails[key] = OnnxRunner(self.graph(spec, size).tail(k), sample_shape)
            while len(self._tails) > _MAX_TAILS:
                self._tails.popitem(last=False)
        self._tails.move_to_end(key)
        return self._tails[key]

    # --- codecs ------------------------------------------------------------------------------
    def site(self, config: Config) -> Site:
        """Where the configuration's codec codes: its place, split name and sample shape."""
        last = self.last_k(config.model)
        place = INPUT if config.k == 0 else OUTPUT if config.k == last else ACTIVATION
        point = self.points(config.model, config.input_size)[config.k]
        shape = () if place == INPUT else tuple(point.shape)
        return Site(config.model, config.input_size, config.k, point.name, place, shape)

    def codec(self, config: Config) -> Codec:
        """The configuration's codec, fitted once; only codecs that learn from data run the head
        over calib (``Calib.activations``), and fits at one site share their work (FitContext)."""
        if config not in self._codecs:
            site = self.site(config)
            codec = make_codec(config.codec_params, site.shape)
            calib = Calib(lambda: self.activations(config.model, config.input_size, config.k, "calib"))
            self._codecs[config] = codec.fit(calib, self.fit_context.at(site))
        return self._codecs[config]

    # --- scoring -----------------------------------------------------------------------------
    def evaluate(self, config: Config, split: str = "val") -> Evaluation:
        acts = None if config.k == 0 else self.activations(config.model, config.input_size, config.k, split)
        return self._score(config, split, acts)

    def evaluate_many(
        self, configs: Sequence[Config], split: str = "test", progress: Callable[[], object] | None = None
    ) -> dict[Config, Evaluation]:
        """Several configurations, grouped by (model, size): one forward per group serves every split
        it needs (in chunks of at most ~1.5 GB of activations), so re-scoring a Pareto set on the
        test split runs each model once per size instead of once per entry."""
        out: dict[Config, Evaluation] = {}
        groups: dict[tuple[str, int], list[Config]] = {}
        for config in configs:
            groups.setdefault((config.model, config.input_size), []).append(config)
        for (spec, size), members in groups.items():
            for c in members:
                if c.k == 0 and c not in out:
                    out[c] = self._score(c, split, None)
                    _tick(progress)
            sizes = self._bytes_per_k(spec, size, split)
            for chunk in _chunks(sorted({c.k for c in members if c.k > 0}), sizes, _TEST_GROUP_BYTES):
                acts = dict(zip(chunk, self._taps(spec, size, split, chunk), strict=True))
                for c in members:
                    if c.k in acts and c not in out:
                        out[c] = self._score(c, split, acts[c.k].astype(np.float32))
                        _tick(progress)
        return out

    def _score(self, config: Config, split: str, acts: np.ndarray | None) -> Evaluation:
        """The device transform, the entropy model both ways and the server transform of every
        image of the split, then the tail: the configuration as deployed, payload by payload."""
        codec = self.codec(config)
        labels = self.dataset.labels[self.indices(split)]
        samples = self.dataset.natives(self.indices(split)) if acts is None else acts
        payloads = [codec.wrap(codec.encode_symbols(s)) for s in codec.to_symbols(samples)]
        decoded = codec.from_symbols([codec.decode_symbols(codec.unwrap(p)) for p in payloads])
        logits = self._logits(config, codec, decoded)
        shape = tuple(samples[0].shape) if len(samples) else codec.shape
        sizes, predicted = np.array([len(p) for p in payloads]), logits.argmax(1)
        return Evaluation(predicted == labels, sizes, codec.device_work(shape), codec.server_work(shape), predicted)

    def _logits(self, config: Config, codec: Codec, decoded: np.ndarray | list[np.ndarray]) -> np.ndarray:
        """What the server makes of the decoded samples: at the input, the model's preprocessing then
        the whole model; at the output, the decoded logits themselves; between, the tail."""
        if codec.place == OUTPUT:
            return np.asarray(decoded)
        if codec.place == INPUT:
            decoded = model_input(list(decoded), config.input_size, self.preprocessing(config.model))
        x = np.asarray(decoded, dtype=np.float32)
        return self.tail(config.model, config.input_size, config.k, x.shape[1:])(x, _BATCH)


def _tick(progress: Callable[[], object] | None) -> None:
    if progress is not None:
        progress()


def _chunks(ks: list[int], bytes_per_k: Sequence[int], budget: float) -> list[list[int]]:
    """``ks`` in runs whose activations fit ``budget`` bytes together (a k alone may exceed it)."""
    chunks: list[list[int]] = []
    used = budget
    for k in ks:
        if used + bytes_per_k[k] > budget:
            chunks.append([])
            used = 0
        chunks[-1].append(k)
        used += bytes_per_k[k]
    return chunks
