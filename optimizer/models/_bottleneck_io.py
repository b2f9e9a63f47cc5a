"""Bottleneck files: ``NAME.pt`` (a state dict, read with ``weights_only=True``) + ``NAME.json``
(the card: the split it belongs to, the architecture, beta, training figures and the SHA-256 of
the weights, checked on load so a card never describes other weights)."""

from __future__ import annotations

import hashlib
import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from optimizer.errors import UserError
from optimizer.models._bottleneck import BottleneckSpec, LearnedBottleneck

__all__ = ["LoadedBottleneck", "bottleneck_name", "load_bottleneck"]


def bottleneck_name(model: str, input_size: int, split: str, beta: float, entropy: str = "factorized") -> str:
    """``bottleneck_{model}_{size}_{split}_b{beta}``: the model spec with ``:``, ``=`` and ``,`` as ``-``, and the
    split point's fx node name (``bottleneck_resnet18_64_layer2_1_relu_1_b0.001``). The eight shipped with
    split-opt keep the names of the older block numbering (``bottleneck_1_64_k7_b0.001``)."""
    slug = model.replace(":", "-").replace("=", "-").replace(",", "-")
    suffix = "" if entropy == "factorized" else f"_{entropy}"
    return f"bottleneck_{slug}_{input_size}_{split}_b{beta:g}{suffix}"


@dataclass(frozen=True)
class LoadedBottleneck:
    """A trained bottleneck in eval mode, its card, and the file it came from."""

    module: LearnedBottleneck
    card: dict[str, Any]
    path: Path

    @property
    def model(self) -> str:
        """The model spec of the teacher the bottleneck was trained at."""
        return str(self.card["model"])

    @property
    def split(self) -> str:
        """The name of the split point it sits at (a node or module name, as ``SplitGraph.select`` takes)."""
        return str(self.card["split"])

    @property
    def input_size(self) -> int:
        return int(self.card["input_size"])

    @property
    def beta(self) -> float:
        return float(self.card["beta"])

    @property
    def entropy(self) -> str:
        return str(self.card.get("entropy", "factorized"))

    @property
    def sha256(self) -> str:
        return str(self.card["weights_sha256"])


def _card_path(path: Path) -> Path:
    return path.with_suffix(".json")


def load_bottleneck(path: str | Path) -> LoadedBottleneck:
    """Load ``NAME.pt`` and its card ``NAME.json`` (either path may be given)."""
    path = Path(path).expanduser().with_suffix(".pt")
    card_path = _card_path(path)
    if not path.is_file() or not card_path.is_file():
        raise UserError(
            f"bottleneck {path} needs both {path.name} and {card_path.name}; "
            "train one with `split-opt bottleneck train`"
        )
    card = json.loads(card_path.read_text())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if card.get("weights_sha256") != digest:
        raise UserError(f"bottleneck weights {path} do not match the SHA-256 in {card_path.name}; re-train or restore")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        module = LearnedBottleneck(BottleneckSpec(**card["spec"]))
        module.load_state_dict(state)
    except (RuntimeError, TypeError, KeyError, ValueError, pickle.UnpicklingError) as exc:
        raise UserError(f"bottleneck {path} does not fit its card ({exc}); re-train it") from exc
    return LoadedBottleneck(module.eval(), card, path)
