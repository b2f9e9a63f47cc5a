"""Weight specs, the strings users type after ``--weights``, and safe state-dict loading.

- ``zoo:NAME``: a model bundled with split-opt (see ``split-opt zoo list``);
- ``torchvision`` (or ``torchvision:IMAGENET1K_V1``): torchvision's ImageNet weights for alpha 1.0,
  read from the local torch hub cache only; split-opt never downloads at run time;
- ``file:PATH``: any MobileNetV2 state dict, loaded with ``weights_only=True`` (no pickle code runs).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from optimizer.errors import UserError

__all__ = ["TORCHVISION_FILE", "load_state_dict_file", "apply_state_dict", "torchvision_weights_path", "num_classes_of"]

# The file name torchvision's MobileNet_V2_Weights.IMAGENET1K_V1 downloads to.
TORCHVISION_FILE = "mobilenet_v2-b0353104.pth"
_TORCHVISION_URL = "https://download.pytorch.org/models/" + TORCHVISION_FILE
_CLASSIFIER_KEY = "classifier.1.weight"


def torchvision_weights_path() -> Path:
    """Where torchvision's ImageNet MobileNetV2 weights live in the local hub cache."""
    return Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_FILE


def require_torchvision_weights() -> Path:
    path = torchvision_weights_path()
    if not path.is_file():
        raise UserError(
            f"torchvision's ImageNet MobileNetV2 weights are not in the torch hub cache ({path}) and "
            f'split-opt does not download at run time; on a connected machine run `python -c "import '
            f"torchvision; torchvision.models.mobilenet_v2(weights='IMAGENET1K_V1')\"` and copy the "
            f"file there (or set TORCH_HOME), or fetch {_TORCHVISION_URL} and pass --weights file:PATH"
        )
    return path


def load_state_dict_file(path: Path) -> dict[str, torch.Tensor]:
    """Read a state dict with ``weights_only=True``, as float32; accept ``{"state_dict": ...}``."""
    if not path.is_file():
        raise UserError(f"weight file {path} does not exist; give an existing state-dict file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(
            f"cannot read weight file {path} as a state dict ({first}); give a file "
            "written by torch.save(model.state_dict(), PATH)"
        ) from exc
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserError(
            f"weight file {path} holds a {type(obj).__name__}, not a state dict of "
            "tensors; save it with torch.save(model.state_dict(), PATH)"
        )
    return {k: (v.float() if v.is_floating_point() else v) for k, v in obj.items()}


def num_classes_of(state: dict[str, torch.Tensor], path: Path) -> int:
    """The number of classes a MobileNetV2 state dict was trained for."""
    weight = state.get(_CLASSIFIER_KEY)
    if weight is None or weight.dim() != 2:
        raise UserError(
            f"weight file {path} has no {_CLASSIFIER_KEY!r} matrix, so it is not a torchvision MobileNetV2 state dict"
        )
    return int(weight.shape[0])


def apply_state_dict(model: nn.Module, state: dict[str, torch.Tensor], source: str, alpha: float) -> None:
    """Load ``state`` into ``model`` strictly, explaining any mismatch in one line."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        detail = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise UserError(
            f"weights {source} do not match MobileNetV2 ({detail}); give a torchvision MobileNetV2 state dict"
        )
    for key, tensor in expected.items():
        if state[key].shape != tensor.shape:
            raise UserError(
                f"weights {source} do not fit MobileNetV2 alpha={alpha:g}: {key} has shape "
                f"{tuple(state[key].shape)}, the model expects {tuple(tensor.shape)}; "
                "pass the alpha and number of classes the weights were trained with"
            )
    model.load_state_dict(state)
