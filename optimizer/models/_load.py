"""Loading any family's weights: the zoo, torchvision's hub cache (offline), or a state-dict file.

Weight specs (the strings users type after ``--weights``):

- ``zoo:NAME``: a model bundled with split-opt; its card's spec must be the model spec asked for;
- ``torchvision`` / ``torchvision:TAG``: torchvision's weights for the family, read from the local
  torch hub cache only (split-opt never downloads at run time; the error says how to fetch them);
- ``file:PATH``: a state dict of the model, read with ``weights_only=True`` (no pickle code runs).

The number of classes comes from the state dict (the rows of the model's last ``nn.Linear``).
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from optimizer.data import Preprocessing
from optimizer.errors import UserError
from optimizer.models._adapter import hub_cache_path
from optimizer.models._bnstats import apply_bn_stats, check_bn_stats, nearest_size, split_bn_stats
from optimizer.models._spec import ModelSpec
from optimizer.models._weights import load_state_dict_file
from optimizer.models._zoo import ZooEntry, list_zoo

if TYPE_CHECKING:
    from optimizer.models._adapter import ModelAdapter

__all__ = ["BuiltModel", "classifier_key", "load_weights", "strict_load"]


@dataclass(frozen=True)
class BuiltModel:
    """A model of a spec, in eval mode, with its weights' origin and the preprocessing they expect.

    ``bn_stats`` holds BatchNorm statistics per input size for zoo-trained weights (see _bnstats);
    ``at_size(size)`` returns the model with that size's statistics (or the nearest one).
    """

    spec: ModelSpec
    model: nn.Module
    num_classes: int
    weights: str
    preprocessing: Preprocessing
    fingerprint: str = ""  # SHA-256 of the weights file: caches of model outputs are keyed by it
    entry: ZooEntry | None = None
    bn_stats: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)
    _by_size: dict[int, nn.Module] = field(default_factory=dict, repr=False, compare=False)

    def at_size(self, input_size: int) -> nn.Module:
        if not self.bn_stats:
            return self.model
        size = nearest_size(sorted(self.bn_stats), input_size)
        if size not in self._by_size:
            model = copy.deepcopy(self.model)
            apply_bn_stats(model, self.bn_stats[size])
            self._by_size[size] = model.eval()
        return self._by_size[size]


def classifier_key(model: nn.Module) -> str | None:
    """The state-dict key of the last ``nn.Linear``'s weight (its rows are the classes), if any."""
    names = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    return f"{names[-1]}.weight" if names else None


def strict_load(model: nn.Module, state: dict[str, torch.Tensor], source: str, spec: ModelSpec) -> None:
    """Load ``state`` into ``model`` strictly, explaining any mismatch in one line."""
    expected = model.state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        detail = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise UserError(f"weights {source} do not match {spec} ({detail}); give a state dict of that model")
    for key, tensor in expected.items():
        if state[key].shape != tensor.shape:
            raise UserError(
                f"weights {source} do not fit {spec}: {key} has shape {tuple(state[key].shape)}, the model "
                f"expects {tuple(tensor.shape)}; give the model spec the weights were trained with"
            )
    model.load_state_dict(state)


def _zoo_entry(spec: ModelSpec, name: str | None, dataset: str, zoo_dir: Path) -> ZooEntry:
    entries = list_zoo(zoo_dir)
    if name is None:
        found = [e for e in entries if e.spec == str(spec) and e.dataset == dataset]
        if not found:
            raise UserError(
                f"the zoo has no {spec} for dataset {dataset!r}; `split-opt zoo list` shows what it has, "
                "or pass --weights torchvision or --weights file:PATH"
            )
        return found[0]
    by_name = {e.name: e for e in entries}
    if name not in by_name:
        raise UserError(f"no zoo model named {name!r}; `split-opt zoo list` shows the names ({', '.join(by_name)})")
    if by_name[name].spec != str(spec):
        raise UserError(f"zoo model {name} is a {by_name[name].spec}, not a {spec}; pick a zoo model of {spec}")
    return by_name[name]


def _weights_path(adapter: ModelAdapter, spec: ModelSpec, weights: str) -> Path:
    kind, _, arg = weights.partition(":")
    if kind == "file" and arg:
        return Path(arg).expanduser()
    if kind == "torchvision":
        member = adapter.torchvision_weights(spec, arg)
        path = hub_cache_path(member.url)
        if not path.is_file():
            raise UserError(
                f"torchvision's {member.name} weights for {spec} are not in the torch hub cache ({path}) and "
                f'split-opt does not download at run time; on a connected machine run `python -c "import '
                f"torchvision; torchvision.models.get_model('{adapter.family}', weights='{member.name}')\"` and "
                f"copy the file there (or set TORCH_HOME), or fetch {member.url} and pass --weights file:PATH"
            )
        return path
    raise UserError(f"unknown weight spec {weights!r}; use zoo:NAME, torchvision[:TAG] or file:PATH")


def _output_width(model: nn.Module, channels: int, input_size: int) -> int:
    with torch.no_grad():
        return int(model(torch.zeros(1, channels, input_size, input_size)).shape[-1])


def load_weights(
    adapter: ModelAdapter, spec: ModelSpec, weights: str | None, dataset: str, zoo_dir: Path
) -> BuiltModel:
    """Build ``spec`` and load weights from a weight spec (``None``: the zoo model of ``spec`` for ``dataset``)."""
    entry = None
    if weights is None or weights.startswith("zoo:"):
        entry = _zoo_entry(spec, weights[4:] if weights else None, dataset, zoo_dir)
        weights = entry.weights
    if entry is not None and weights.startswith("zoo:"):
        path = zoo_dir / f"{entry.name}.pt"
    else:
        path = _weights_path(adapter, spec, weights)
    state, bn_stats = split_bn_stats(load_state_dict_file(path))
    key = classifier_key(adapter.build(spec))
    rows = int(state[key].shape[0]) if key and key in state and state[key].dim() == 2 else None
    model = adapter.build(spec, rows)
    strict_load(model, state, weights, spec)
    try:
        for stats in bn_stats.values():
            check_bn_stats(model, stats)
    except ValueError as exc:
        raise UserError(
            f"weights {weights} carry per-size BatchNorm statistics that do not fit {spec} ({exc})"
        ) from exc
    card = entry.card.get("preprocessing") if entry else None
    preprocessing = Preprocessing.from_json(card) if card else adapter.preprocessing(spec, weights)
    num_classes = rows if rows is not None else _output_width(model, preprocessing.channels, adapter.min_input_size)
    fingerprint = hashlib.sha256(path.read_bytes()).hexdigest()
    return BuiltModel(spec, model.eval(), num_classes, weights, preprocessing, fingerprint, entry, bn_stats)
