"""MobileNetV2 with a width multiplier: ``mobilenetv2:alpha=A`` (the bundled zoo's family).

Building and loading reuse the MobileNetV2 code the rest of split-opt has always used
(``_mobilenetv2``, ``_zoo.load_model``), so the zoo's per-size BatchNorm statistics and the
``torchvision`` weights (alpha 1.0 only) keep working through the spec.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torchvision
from torch import nn

from optimizer.data import Preprocessing
from optimizer.errors import UserError
from optimizer.models._adapter import DEFAULT_TORCHVISION_TAG, ModelAdapter, preprocessing_of
from optimizer.models._load import BuiltModel
from optimizer.models._mobilenetv2 import FAMILY, build_mobilenetv2
from optimizer.models._spec import ModelSpec, Param
from optimizer.models._zoo import load_model

__all__ = ["ADAPTERS", "MobileNetV2Adapter"]


class MobileNetV2Adapter(ModelAdapter):
    family = FAMILY
    description = "torchvision's MobileNetV2 with width multiplier alpha (the bundled zoo)"
    params = (Param("alpha", float, 1.0, low=0.0, high=4.0),)

    def build(self, spec: ModelSpec, num_classes: int | None = None) -> nn.Module:
        return build_mobilenetv2(spec.get("alpha"), 1000 if num_classes is None else num_classes)

    def torchvision_weights(self, spec: ModelSpec, tag: str) -> Any:
        if spec.get("alpha") != 1.0:
            raise UserError(f"torchvision's weights are for alpha 1.0, not {spec}; use mobilenetv2:alpha=1.0")
        tag = tag or DEFAULT_TORCHVISION_TAG
        if tag != DEFAULT_TORCHVISION_TAG:
            raise UserError(f"torchvision weights {tag!r} are not supported; use torchvision:{DEFAULT_TORCHVISION_TAG}")
        return torchvision.models.MobileNet_V2_Weights[tag]

    def preprocessing(self, spec: ModelSpec, weights: str | None = None) -> Preprocessing:
        if weights is not None and weights.partition(":")[0] == "torchvision":
            return preprocessing_of(self.torchvision_weights(spec, weights.partition(":")[2]))
        return Preprocessing()

    def load(self, spec: ModelSpec, weights: str | None, dataset: str, zoo_dir: Path) -> BuiltModel:
        loaded = load_model(spec.get("alpha"), weights, dataset, zoo_dir)
        card = loaded.entry.card.get("preprocessing") if loaded.entry else None
        prep = Preprocessing.from_json(card) if card else self.preprocessing(spec, loaded.weights)
        return BuiltModel(
            spec,
            loaded.model,
            loaded.num_classes,
            loaded.weights,
            prep,
            loaded.fingerprint,
            loaded.entry,
            loaded.bn_stats,
        )


ADAPTERS: tuple[ModelAdapter, ...] = (MobileNetV2Adapter(),)
