"""On-disk cache of model costs, so a model is traced once and every later profile, search trial
and process reuses it. Keyed by (family, alpha, num_classes, input size, cache version).

Location: ``$SPLIT_OPT_CACHE_DIR`` or ``~/.cache/split-opt``; delete the folder to clear it.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import asdict
from pathlib import Path

from optimizer.models import FAMILY, build_mobilenetv2
from optimizer.profiler._costs import BlockCost, LayerCost, ModelCosts, count_costs

__all__ = ["cache_dir", "model_costs"]

_VERSION = 1


def cache_dir() -> Path:
    return Path(os.environ.get("SPLIT_OPT_CACHE_DIR") or Path.home() / ".cache" / "split-opt")


def _from_json(doc: dict) -> ModelCosts:
    blocks = [BlockCost(**{**b, "layers": [LayerCost(**layer) for layer in b["layers"]]}) for b in doc["blocks"]]
    return ModelCosts(doc["input_size"], doc["input_elements"], blocks)


@functools.lru_cache(maxsize=128)
def model_costs(alpha: float, num_classes: int, input_size: int) -> ModelCosts:
    """Costs of MobileNetV2(alpha, num_classes) at ``input_size``, from the cache or counted now."""
    path = cache_dir() / "costs" / f"v{_VERSION}_{FAMILY}_{alpha:g}_{num_classes}_{input_size}.json"
    if path.is_file():
        try:
            return _from_json(json.loads(path.read_text()))
        except (ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)  # a damaged entry is recounted, never trusted
    costs = count_costs(build_mobilenetv2(alpha, num_classes), input_size)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(asdict(costs)))
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home only costs the recount next time
    return costs
