"""The model zoo: bundled Fashion-MNIST models, torchvision's ImageNet weights, and weight files.

Bundled models live in ``optimizer/models/zoo_weights/`` as ``NAME.pt`` (half-precision state
dict) beside ``NAME.json`` (the model card written by ``split-opt zoo train``).
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from optimizer.errors import UserError
from optimizer.models._bnstats import apply_bn_stats, check_bn_stats, nearest_size, split_bn_stats
from optimizer.models._mobilenetv2 import FAMILY, build_mobilenetv2
from optimizer.models._spec import ModelSpec, format_number
from optimizer.models._weights import (
    apply_state_dict,
    load_state_dict_file,
    num_classes_of,
    require_torchvision_weights,
    torchvision_weights_path,
)

__all__ = [
    "DEFAULT_SEARCH_SPACE",
    "ZOO_DIR",
    "LoadedModel",
    "ZooEntry",
    "find_zoo_entry",
    "list_zoo",
    "load_model",
    "model_name",
    "weights_for_alpha",
    "zoo_name",
]

ZOO_DIR = Path(__file__).parent / "zoo_weights"
# The search space the main job (`split-opt search` without --search-space) uses: the zoo's first family.
DEFAULT_SEARCH_SPACE = "mobilenetv2-fashion-mnist.yaml"
# torchvision's own published ImageNet-1K top-1 for MobileNet_V2_Weights.IMAGENET1K_V1 (meta data).
_TORCHVISION_TOP1 = 0.71878


def model_name(alpha: float, dataset: str) -> str:
    """The zoo's MobileNetV2 names: ``mobilenetv2_{alpha}_{dataset}`` (``mobilenetv2_1.0_fashion-mnist``)."""
    return f"{FAMILY}_{format_number(alpha)}_{dataset}"


def zoo_name(spec: ModelSpec, dataset: str) -> str:
    """The zoo's naming rule for a model spec: family, the spec's explicit parameters, dataset.

    ``resnet18:width=0.5`` on fashion-mnist -> ``resnet18_width0.5_fashion-mnist``;
    ``mobilenet_v3_small`` -> ``mobilenet_v3_small_fashion-mnist``; MobileNetV2 keeps
    :func:`model_name` (``mobilenetv2_0.35_fashion-mnist``).
    """
    if spec.family == FAMILY:
        return model_name(float(spec.get("alpha")), dataset)
    explicit = [part.replace("=", "") for part in spec.args.split(",") if part] if "=" in spec.args else []
    return "_".join([spec.family, *explicit, dataset])


@dataclass(frozen=True)
class ZooEntry:
    """One model of the zoo, as ``split-opt zoo list`` shows it."""

    name: str
    family: str
    alpha: float | None  # MobileNetV2's width; None for the other families (their spec says it all)
    dataset: str
    source: str
    num_classes: int
    input_sizes: list[int]
    accuracy: dict[str, float]
    weights: str
    available: bool = True
    card: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def spec(self) -> str:
        """The model spec of the entry: a card's ``spec``, else (MobileNetV2 cards) built from its alpha."""
        if self.card.get("spec"):
            return str(self.card["spec"])
        return self.family if self.alpha is None else f"{self.family}:alpha={format_number(self.alpha)}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": self.family,
            "spec": self.spec,
            "alpha": self.alpha,
            "dataset": self.dataset,
            "source": self.source,
            "num_classes": self.num_classes,
            "input_sizes": self.input_sizes,
            "accuracy": self.accuracy,
            "weights": self.weights,
            "available": self.available,
            "accuracy_split": self.card.get("accuracy_split", "test"),
        }


def _bundled_entry(card_path: Path) -> ZooEntry:
    card = json.loads(card_path.read_text())
    return ZooEntry(
        name=card["name"],
        family=card["family"],
        alpha=None if card.get("alpha") is None else float(card["alpha"]),
        dataset=card["dataset"],
        source="bundled",
        num_classes=int(card["num_classes"]),
        input_sizes=[int(s) for s in card["input_sizes"]],
        accuracy={str(k): float(v) for k, v in card["accuracy"].items()},
        weights=f"zoo:{card['name']}",
        available=card_path.with_suffix(".pt").is_file(),
        card=card,
    )


def _torchvision_entry() -> ZooEntry:
    return ZooEntry(
        name=model_name(1.0, "imagenet"),
        family=FAMILY,
        alpha=1.0,
        dataset="imagenet",
        source="torchvision",
        num_classes=1000,
        input_sizes=[224],
        accuracy={"224": _TORCHVISION_TOP1},
        weights="torchvision",
        available=torchvision_weights_path().is_file(),
        card={"accuracy_split": "ImageNet-1K val, as published by torchvision"},
    )


def list_zoo(zoo_dir: Path = ZOO_DIR) -> list[ZooEntry]:
    """Bundled models (sorted by dataset, family, alpha), then torchvision's ImageNet MobileNetV2."""
    bundled = [_bundled_entry(p) for p in sorted(zoo_dir.glob("*.json"))]
    return [*sorted(bundled, key=lambda e: (e.dataset, e.family, e.alpha or 0.0)), _torchvision_entry()]


def find_zoo_entry(alpha: float, dataset: str, zoo_dir: Path = ZOO_DIR) -> ZooEntry:
    """The zoo model for ``alpha`` trained on ``dataset``, or a UserError listing what exists."""
    entries = [e for e in list_zoo(zoo_dir) if e.dataset == dataset and e.alpha is not None]
    for entry in entries:
        if entry.alpha is not None and abs(entry.alpha - alpha) < 1e-9:
            return entry
    alphas = ", ".join(f"{e.alpha:g}" for e in entries) or "none"
    raise UserError(
        f"the zoo has no {FAMILY} with alpha={alpha:g} for dataset {dataset!r} "
        f"(available alphas: {alphas}); pick one of those, train one with `split-opt zoo "
        f"train --alpha {alpha:g}`, or pass --weights file:PATH"
    )


@dataclass(frozen=True)
class LoadedModel:
    """A model in eval mode and where its weights came from.

    ``model`` carries the BatchNorm statistics stored in the file's main state dict; weights
    trained by ``split-opt zoo train`` also carry statistics per input size (see _bnstats), and
    ``at_size(size)`` returns the model with the statistics of that size (or the nearest one).
    """

    model: nn.Module
    alpha: float
    num_classes: int
    weights: str
    entry: ZooEntry | None
    bn_stats: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)
    fingerprint: str = ""  # SHA-256 of the weights file: caches of model outputs are keyed by it
    _by_size: dict[int, nn.Module] = field(default_factory=dict, repr=False, compare=False)

    def at_size(self, input_size: int) -> nn.Module:
        """The model to run at ``input_size`` (a copy with that size's BatchNorm statistics)."""
        if not self.bn_stats:
            return self.model
        size = nearest_size(sorted(self.bn_stats), input_size)
        if size not in self._by_size:
            model = copy.deepcopy(self.model)
            apply_bn_stats(model, self.bn_stats[size])
            self._by_size[size] = model.eval()
        return self._by_size[size]


def _entry_by_name(name: str, zoo_dir: Path) -> ZooEntry:
    entries = {e.name: e for e in list_zoo(zoo_dir)}
    if name not in entries:
        raise UserError(f"no zoo model named {name!r}; `split-opt zoo list` shows the names ({', '.join(entries)})")
    return entries[name]


def weights_for_alpha(spec: str, alpha: float) -> str | None:
    """A search space's ``weights`` for one alpha: ``zoo`` -> the bundled default (None),
    ``{alpha}`` in a file path -> that alpha (``file:w_{alpha}.pt`` -> ``file:w_0.35.pt``)."""
    return None if spec == "zoo" else spec.replace("{alpha}", f"{alpha:g}")


def load_model(
    alpha: float, weights: str | None = None, dataset: str = "fashion-mnist", zoo_dir: Path = ZOO_DIR
) -> LoadedModel:
    """Build MobileNetV2(alpha) and load weights from a spec (default: the zoo model for dataset)."""
    if weights is None:
        weights = find_zoo_entry(alpha, dataset, zoo_dir).weights
    kind, _, arg = weights.partition(":")
    entry: ZooEntry | None = None
    if kind == "zoo":
        entry = _entry_by_name(arg, zoo_dir)
        if entry.source == "torchvision":
            return load_model(alpha, "torchvision", dataset, zoo_dir)
        path = zoo_dir / f"{entry.name}.pt"
    elif kind == "torchvision":
        if arg not in ("", "IMAGENET1K_V1"):
            raise UserError(f"torchvision weights {arg!r} are not supported; use torchvision:IMAGENET1K_V1")
        entry, path = _torchvision_entry(), require_torchvision_weights()
    elif kind == "file" and arg:
        path = Path(arg).expanduser()
    else:
        raise UserError(f"unknown weight spec {weights!r}; use zoo:NAME, torchvision or file:PATH")
    if entry is not None and (entry.alpha is None or abs(entry.alpha - alpha) > 1e-9):
        raise UserError(
            f"weights {weights} are for {entry.spec}, not {FAMILY}:alpha={format_number(alpha)}; "
            f"pass --model {entry.spec} or other weights"
        )
    state, bn_stats = split_bn_stats(load_state_dict_file(path))
    num_classes = num_classes_of(state, path)
    model = build_mobilenetv2(alpha, num_classes)
    apply_state_dict(model, state, weights, alpha)
    try:
        for stats in bn_stats.values():
            check_bn_stats(model, stats)
    except ValueError as exc:
        raise UserError(
            f"weights {weights} carry per-size BatchNorm statistics that do not fit the model "
            f"({exc}); re-train or re-export the file"
        ) from exc
    fingerprint = hashlib.sha256(path.read_bytes()).hexdigest()
    return LoadedModel(model.eval(), alpha, num_classes, weights, entry, bn_stats, fingerprint)
