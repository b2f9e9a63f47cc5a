"""The search space's ``bottleneck`` section: trained bottlenecks the search may choose.

    bottleneck:
      files: [bottlenecks/bottleneck_1_64_k7_b0.001.pt]   # from `split-opt bottleneck train`

Each file is a trained bottleneck's weights; its card (the ``.json`` beside it) says which model
spec (``model``), input size and split point (``split``, its name) it belongs to, and its beta.
Paths are taken as given (relative to the working directory), else relative to the search space
file. Each bottleneck is offered only at its own site, as a named choice there (trial parameter
``bottleneck_{model}_{size}_k{k}``: ``none`` or its name), and scored once as a reference point.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optimizer.codecs._fit import Site
from optimizer.codecs._options import CodecOptions

if TYPE_CHECKING:
    from optimizer.config import Reader

__all__ = ["BottleneckChoice", "BottleneckOptions"]


@dataclass(frozen=True)
class BottleneckChoice:
    """A trained bottleneck, as its card describes it."""

    name: str
    file: str  # absolute path of the weights (.pt)
    weights_sha256: str
    model: str  # the model spec of its teacher, as the card writes it
    input_size: int
    split: str  # its split point's name
    beta: float

    def codec_params(self) -> dict[str, Any]:
        return {"file": self.file, "weights_sha256": self.weights_sha256, "beta": self.beta}


class BottleneckOptions(CodecOptions):
    section = "bottleneck"
    placed = True

    def parse(self, reader: Reader) -> tuple[BottleneckChoice, ...]:
        reader.check_keys({"files"})
        files = reader.data["files"]
        if not isinstance(files, list):
            raise reader.error(f"must be a list of weight files, got {files!r}", "files")
        choices = tuple(_choice(reader, _resolve(reader, f)) for f in files)
        if len({c.name for c in choices}) != len(choices):
            raise reader.error("must not list the same bottleneck twice", "files")
        return choices

    def suggest(self, trial: Any, choices: Any, site: Site) -> dict[str, Any]:
        raise AssertionError("a bottleneck is chosen by name at its site (variants), never suggested")

    def grid(self, choices: Any, site: Site) -> list[dict[str, Any]]:
        return []

    def variants(self, choices: tuple[BottleneckChoice, ...], site: Site) -> list[str]:
        return [
            c.name
            for c in choices
            if (_canonical(c.model), c.input_size) == (site.model, site.input_size) and _at(c.split, site)
        ]

    def variant(self, choices: tuple[BottleneckChoice, ...], name: str) -> dict[str, Any]:
        return next(c for c in choices if c.name == name).codec_params()


def _at(split: str, site: Site) -> bool:
    """Whether a card's split (a node or module name) is this site's split point."""
    from optimizer.models import split_graph

    return split == site.split or split_graph(site.model).select([split]) == [site.k]


@functools.lru_cache(maxsize=64)
def _canonical(spec: str) -> str:
    from optimizer.models import parse_model_spec

    return str(parse_model_spec(spec))


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
