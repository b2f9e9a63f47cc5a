"""The search space's optional ``bottleneck`` section: trained bottlenecks the search may choose.

    bottleneck:
      files: [bottlenecks/bottleneck_1_64_k7_b0.001.pt]   # from `split-opt bottleneck train`

Each file is a trained bottleneck's weights; its card (the ``.json`` beside it) says which model
spec (``model``), input size and split point (``split``, its name) it belongs to, and its beta.
Paths are taken as given (relative to the working directory), else relative to the search space file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optimizer.config._schema import Reader

__all__ = ["BottleneckChoice", "parse_bottlenecks"]


@dataclass(frozen=True)
class BottleneckChoice:
    """A trained bottleneck. ``split`` is its split point's name, or (a study stored before model
    specs) the block index of the older numbering, which the search maps to the split point."""

    name: str
    file: str  # absolute path of the weights (.pt)
    weights_sha256: str
    model: str  # the model spec (cards before model specs: built from the family and alpha)
    input_size: int
    split: str | int
    beta: float

    def codec_params(self) -> dict[str, object]:
        return {"kind": "bottleneck", "file": self.file, "weights_sha256": self.weights_sha256, "beta": self.beta}

    @classmethod
    def from_json(cls, doc: dict[str, Any], family: str | None = None) -> BottleneckChoice:
        """What ``dataclasses.asdict`` stored (pareto.json); a study stored before model specs kept
        ``alpha`` and a block index ``k``, and its space's ``family``."""
        if "model" not in doc:
            spec = f"{family}:alpha={float(doc['alpha'])!r}"
            doc = {**{k: v for k, v in doc.items() if k not in ("alpha", "k")}, "model": spec, "split": int(doc["k"])}
        return cls(**doc)


def _resolve(reader: Reader, value: object) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise reader.error(f"must list weight file paths, got {value!r}", "files")
    path = Path(value).expanduser()
    if not path.is_file() and not path.is_absolute():
        path = reader.path.parent / path
    if not path.is_file() or not path.with_suffix(".json").is_file():
        raise reader.error(
            f"{value!r} is not a trained bottleneck (its .pt and .json card must exist); "
            "train one with `split-opt bottleneck train`",
            "files",
        )
    return path.resolve()


def _choice(reader: Reader, path: Path) -> BottleneckChoice:
    try:
        card = json.loads(path.with_suffix(".json").read_text())
        if "model" not in card or "split" not in card:
            raise reader.error(
                f"the card of {path} names no model spec and split point (a card from before model specs); "
                'add "model" (the teacher\'s model spec) and "split" (the split point\'s name, from `split-opt '
                "splits --model SPEC`) to it, or re-train the bottleneck",
                "files",
            )
        return BottleneckChoice(
            str(card["name"]),
            str(path),
            str(card["weights_sha256"]),
            str(card["model"]),
            int(card["input_size"]),
            str(card["split"]),
            float(card["beta"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise reader.error(f"the card of {path} is unreadable ({exc}); re-train the bottleneck", "files") from exc


def parse_bottlenecks(reader: Reader) -> tuple[BottleneckChoice, ...]:
    """The ``bottleneck`` section of a search space, or () when it has none."""
    if "bottleneck" not in reader.data:
        return ()
    r = reader.child("bottleneck")
    r.check_keys({"files"})
    files = r.data["files"]
    if not isinstance(files, list):
        raise r.error(f"must be a list of weight files, got {files!r}", "files")
    choices = tuple(_choice(r, _resolve(r, f)) for f in files)
    if len({c.name for c in choices}) != len(choices):
        raise r.error("must not list the same bottleneck twice", "files")
    return choices
