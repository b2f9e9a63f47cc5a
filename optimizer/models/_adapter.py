"""The model adapter contract, and the adapter every torchvision classification family shares.

An adapter turns a :class:`ModelSpec` of its family into a network and says everything split-opt
needs to know about it: its parameters, how to build it for a number of classes, which torchvision
weights it has (read from the local hub cache only), what preprocessing it expects, the smallest
input it takes, which modules torch.fx must keep whole (leaf modules) and so its split points.
Loading weights and finding split points are generic (``_load`` and ``_fx_split``); an adapter
overrides them only when its family needs something of its own.
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torchvision
from torch import nn

from optimizer.data import Preprocessing
from optimizer.errors import UserError
from optimizer.models._fx_split import SplitGraph
from optimizer.models._spec import ModelSpec, Param, parse_params

if TYPE_CHECKING:
    from optimizer.models._load import BuiltModel

__all__ = ["DEFAULT_TORCHVISION_TAG", "ModelAdapter", "TorchvisionAdapter", "hub_cache_path", "preprocessing_of"]

DEFAULT_TORCHVISION_TAG = "IMAGENET1K_V1"


class ModelAdapter(abc.ABC):
    """One family of models. Subclasses set ``family`` and ``params`` and implement :meth:`build`."""

    family: str = ""
    description: str = ""
    params: tuple[Param, ...] = ()
    min_input_size: int = 32  # every registered family downsamples by 32

    def parse(self, args: str) -> ModelSpec:
        """The canonical spec for the text after ``FAMILY:``."""
        return parse_params(self.family, args, self.params)

    @abc.abstractmethod
    def build(self, spec: ModelSpec, num_classes: int | None = None) -> nn.Module:
        """An untrained model in eval mode (``num_classes=None``: the family's default)."""

    def leaf_modules(self, spec: ModelSpec) -> tuple[type[nn.Module], ...]:
        """Module classes torch.fx keeps as single nodes (in addition to torch.nn's own layers)."""
        return ()

    def preprocessing(self, spec: ModelSpec, weights: str | None = None) -> Preprocessing:
        """The input the model expects with these weights (default: ImageNet statistics, shorter side + crop)."""
        return Preprocessing()

    def torchvision_weights(self, spec: ModelSpec, tag: str) -> Any:
        """torchvision's weights enum member for ``torchvision:TAG``."""
        raise UserError(
            f"{spec} has no torchvision weights; use --weights zoo:NAME or file:PATH (a state dict of this model)"
        )

    def load(self, spec: ModelSpec, weights: str | None, dataset: str, zoo_dir: Path) -> BuiltModel:
        """The model with weights from a weight spec (``zoo:NAME``, ``torchvision[:TAG]``, ``file:PATH``)."""
        from optimizer.models._load import load_weights

        return load_weights(self, spec, weights, dataset, zoo_dir)

    def split_graph(self, spec: ModelSpec, model: nn.Module) -> SplitGraph:
        """``model`` (a model of ``spec``) traced by torch.fx, with its split points."""
        return SplitGraph(model, self.leaf_modules(spec), str(spec), self.preprocessing(spec).channels)

    def check_input_size(self, input_size: int) -> int:
        if not isinstance(input_size, int) or input_size < self.min_input_size:
            raise UserError(
                f"input size must be an integer of at least {self.min_input_size} pixels for {self.family} "
                f"(it downsamples by 32), got {input_size!r}"
            )
        return input_size


def hub_cache_path(url: str) -> Path:
    """Where torch.hub keeps the file of a weights URL (``$TORCH_HOME/hub/checkpoints/NAME``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def preprocessing_of(weights_enum_member: Any) -> Preprocessing:
    """The preprocessing torchvision declares for a weights enum member (its ``transforms()``)."""
    t = weights_enum_member.transforms()
    crop, resize = int(t.crop_size[0]), int(t.resize_size[0])
    interpolation = str(getattr(t.interpolation, "value", t.interpolation)).lower()
    return Preprocessing(tuple(t.mean), tuple(t.std), "resize_crop", crop / resize, interpolation, 3)


class TorchvisionAdapter(ModelAdapter):
    """A torchvision classification model by its builder name (``resnet18``, ``efficientnet_b0``)."""

    def __init__(self, family: str, description: str, leaves: tuple[type[nn.Module], ...] = ()) -> None:
        self.family = family
        self.description = description
        self._leaves = leaves

    def build(self, spec: ModelSpec, num_classes: int | None = None) -> nn.Module:
        if num_classes is not None and num_classes < 1:
            raise UserError(f"num_classes must be at least 1, got {num_classes!r}")
        model: nn.Module = torchvision.models.get_model(self.family, weights=None, num_classes=num_classes or 1000)
        return model.eval()

    def leaf_modules(self, spec: ModelSpec) -> tuple[type[nn.Module], ...]:
        return self._leaves

    def torchvision_weights(self, spec: ModelSpec, tag: str) -> Any:
        enum = torchvision.models.get_model_weights(self.family)
        names = [w.name for w in enum]
        tag = tag or DEFAULT_TORCHVISION_TAG
        if tag not in names:
            raise UserError(f"torchvision has no {tag!r} weights for {self.family}; use torchvision:{names[0]}")
        return enum[tag]

    def preprocessing(self, spec: ModelSpec, weights: str | None = None) -> Preprocessing:
        if weights is not None and weights.partition(":")[0] == "torchvision":
            return preprocessing_of(self.torchvision_weights(spec, weights.partition(":")[2]))
        return Preprocessing()
