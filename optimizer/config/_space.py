"""Search spaces (search_spaces/*.yaml): which models, input sizes, splits and codecs a study may try.

Schema (documented for users in search_spaces/README.md):

    name: text
    description: text
    dataset: fashion-mnist              # a dataset spec
    input_sizes: [32, 48, 64, 96]       # defaults for every model below that gives none
    cuts: blocks                        #   all | blocks | [split point names]
    weights: zoo                        #   zoo | zoo:NAME | torchvision[:TAG] | file:PATH
    models:
      - spec: mobilenetv2:alpha=1.0     # a model spec (split-opt splits --model SPEC lists its cuts)
        input_sizes: [64]               # optional: overrides the defaults above
        cuts: [features.3, layer2]      # optional: split point names (fx node or module names)
        weights: file:/models/w.pt      # optional
    samples: {calib: 1000, val: 1000}   # images used to fit codecs and to score trials
    pca: {geometry: [...], tile: 2, components: [...], bits: [...], coders: [...]}
    image: {formats: [...], qualities: [...]}     # the image codecs at k = 0
    bottleneck: {files: [...]}          # optional: trained bottlenecks

Every other top-level key is a codec's section (``pca``, ``image``, ``bottleneck``, ``uniform``...):
this layer keeps them as written, and the codecs read them (optimizer.codecs.CodecChoices), since
which codecs exist is the codec registry's business, not the configuration's.

The older form (``family`` + ``alphas`` + ``input_sizes`` + ``splits: {min, max}`` + ``weights``)
still reads: one model per alpha, its block boundaries (``cuts: blocks``) from ``min`` to ``max``.
This layer only checks the data; the search resolves specs and cut names through the model registry.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from optimizer.config._schema import Reader, load_yaml_mapping
from optimizer.errors import UserError

__all__ = ["CUT_SETS", "ModelChoice", "SearchSpace", "load_search_space"]

CUT_SETS = ("all", "blocks")  # every split point; those at module depth <= 2 (models.SplitGraph.block_ks)
_MODEL_KEYS = frozenset({"spec", "input_sizes", "cuts", "weights"})
_COMMON = frozenset({"name", "description", "dataset", "samples"})
_MODELS_FORM = frozenset({"models", "input_sizes", "cuts", "weights"})
_LEGACY_FORM = frozenset({"family", "alphas", "input_sizes", "splits", "weights"})


@dataclass(frozen=True)
class ModelChoice:
    """One model of the space.

    Attributes:
        spec: the model spec as written (the search canonicalises it through the registry).
        weights: a weight spec (``zoo``: the zoo's model of this spec for the dataset).
        input_sizes: square input sizes to try.
        cuts: ``all``, ``blocks`` or split point names.
        cut_range: positions (inclusive) in the resolved list of cuts; the older form's ``splits``.
    """

    spec: str
    weights: str
    input_sizes: tuple[int, ...]
    cuts: str | tuple[str, ...] = "all"
    cut_range: tuple[int, int] | None = None


@dataclass(frozen=True)
class SearchSpace:
    name: str
    description: str
    path: str
    dataset: str
    models: tuple[ModelChoice, ...]
    codecs: dict[str, Any]  # section name -> the section as written (read by optimizer.codecs)
    calib_samples: int
    val_samples: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> SearchSpace:
        """The inverse of :meth:`to_json` (pareto.json stores it); the forms studies stored before
        (``alphas``, ``k_min``...; ``pca``, ``image`` and ``bottlenecks`` as fields) are read too."""
        try:
            if "models" not in doc:
                doc = {**doc, "models": _legacy_models(doc["family"], doc)}
            return cls(
                name=doc["name"],
                description=doc["description"],
                path=doc["path"],
                dataset=doc["dataset"],
                models=tuple(_model_from_json(m) for m in doc["models"]),
                codecs=dict(doc["codecs"]) if "codecs" in doc else _legacy_codecs(doc),
                calib_samples=int(doc["calib_samples"]),
                val_samples=int(doc["val_samples"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"the stored search space is not readable ({exc}); pass the space's file") from exc


def _legacy_codecs(doc: dict[str, Any]) -> dict[str, Any]:
    """Codec sections of a space stored before codecs read their own: ``pca`` and ``image`` as they
    were, the resolved ``bottlenecks`` as the files they came from."""
    codecs: dict[str, Any] = {key: doc[key] for key in ("pca", "image") if key in doc}
    if doc.get("bottlenecks"):
        codecs["bottleneck"] = {"files": [str(b["file"]) for b in doc["bottlenecks"]]}
    return codecs


def _model_from_json(m: dict[str, Any]) -> ModelChoice:
    cuts = m.get("cuts", "all")
    cut_range = m.get("cut_range")
    return ModelChoice(
        m["spec"],
        m["weights"],
        tuple(int(s) for s in m["input_sizes"]),
        cuts if isinstance(cuts, str) else tuple(cuts),
        (int(cut_range[0]), int(cut_range[1])) if cut_range else None,
    )


def _legacy_models(family: str, doc: dict[str, Any]) -> list[dict[str, Any]]:
    """``family`` + ``alphas`` (files and studies before model specs): one model per alpha, its
    block boundaries from ``k_min`` to ``k_max`` (the older block numbering)."""
    weights = str(doc["weights"])
    return [
        {
            "spec": f"{family}:alpha={float(a)!r}",
            # ``zoo`` and torchvision are per spec already; {alpha} in a file path names each alpha's file
            "weights": weights.replace("{alpha}", f"{float(a):g}"),
            "input_sizes": list(doc["input_sizes"]),
            "cuts": "blocks",
            "cut_range": [int(doc["k_min"]), int(doc["k_max"])],
        }
        for a in doc["alphas"]
    ]


def _cuts(reader: Reader, key: str = "cuts") -> str | tuple[str, ...]:
    value = reader.data[key]
    if isinstance(value, str):
        if value not in CUT_SETS:
            raise reader.error(f"must be {' or '.join(CUT_SETS)} or a list of split point names, got {value!r}", key)
        return value
    return reader.values(key, str)


def _model(reader: Reader, index: int, defaults: dict[str, Any]) -> ModelChoice:
    entry = reader.data["models"][index]
    r = Reader(entry if not isinstance(entry, str) else {"spec": entry}, reader.path, f"models[{index}]")
    r.check_keys({"spec"}, _MODEL_KEYS - {"spec"})
    sizes = r.values("input_sizes", int, minimum=1) if "input_sizes" in r.data else defaults.get("input_sizes")
    if sizes is None:
        raise r.error("needs input_sizes (here or at the top level of the space)")
    return ModelChoice(
        r.text("spec").strip(),
        r.text("weights") if "weights" in r.data else defaults.get("weights", "zoo"),
        sizes,
        _cuts(r) if "cuts" in r.data else defaults.get("cuts", "all"),
    )


def _models(reader: Reader) -> tuple[ModelChoice, ...]:
    if not isinstance(reader.data["models"], list) or not reader.data["models"]:
        raise reader.error(f"must be a non-empty list of models, got {reader.data['models']!r}", "models")
    defaults: dict[str, Any] = {}
    if "input_sizes" in reader.data:
        defaults["input_sizes"] = reader.values("input_sizes", int, minimum=1)
    if "cuts" in reader.data:
        defaults["cuts"] = _cuts(reader)
    if "weights" in reader.data:
        defaults["weights"] = reader.text("weights")
    models = tuple(_model(reader, i, defaults) for i in range(len(reader.data["models"])))
    specs = [m.spec for m in models]
    repeated = sorted({s for s in specs if specs.count(s) > 1})
    if repeated:
        raise reader.error(f"lists {repeated[0]} twice; list each model spec once", "models")
    return models


def _legacy(reader: Reader) -> tuple[ModelChoice, ...]:
    """The older form: ``family`` + ``alphas`` + ``splits``."""
    for key in ("family", "alphas", "splits", "weights", "input_sizes"):
        if key not in reader.data:
            raise reader.error("is required but missing (or list the models under `models:`)", key)
    splits = reader.child("splits")
    splits.check_keys({"min", "max"})
    k_min, k_max = int(splits.number("min", 0, strict=False)), int(splits.number("max", 0, strict=False))
    if k_min > k_max:
        raise splits.error(f"min <= max must hold, got min={k_min}, max={k_max}")
    doc = {
        "weights": reader.text("weights"),
        "alphas": reader.values("alphas", float, minimum=0.01),
        "input_sizes": reader.values("input_sizes", int, minimum=1),
        "k_min": k_min,
        "k_max": k_max,
    }
    return tuple(_model_from_json(m) for m in _legacy_models(reader.text("family"), doc))


def parse_search_space(data: dict[str, Any], path: Path) -> SearchSpace:
    reader = Reader(data, path)
    form = _MODELS_FORM if "models" in data else _LEGACY_FORM
    for key in sorted(_COMMON - set(data)):
        raise reader.error("is required but missing", key)
    models = _models(reader) if "models" in data else _legacy(reader)
    codecs = {key: value for key, value in data.items() if key not in _COMMON | form}
    for key, value in codecs.items():
        if key in _MODELS_FORM | _LEGACY_FORM:
            raise reader.error(f"belongs to the {'models' if 'models' not in data else 'older family'} form", key)
        if not isinstance(value, dict):
            fields = ", ".join(sorted(_COMMON | form))
            raise reader.error(
                f"unknown key (fields: {fields}; codec sections such as pca: are mappings), got {value!r}", key
            )
    samples = reader.child("samples")
    samples.check_keys({"calib", "val"})
    return SearchSpace(
        name=reader.text("name"),
        description=reader.text("description"),
        path=str(path),
        dataset=reader.text("dataset"),
        models=models,
        codecs=codecs,
        calib_samples=int(samples.number("calib", 1)),
        val_samples=int(samples.number("val", 1)),
    )


def load_search_space(path: str | Path) -> SearchSpace:
    """Read and check a search space; any problem is a UserError naming file, field and rule."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"search space {path} does not exist; pass one of search_spaces/*.yaml")
    return parse_search_space(load_yaml_mapping(path), path)
