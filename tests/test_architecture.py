"""Imports flow one way: errors <- pinning, imaging, protocol <- config <- data <- models <- codecs <- profiler
<- system <- search <- report, deploy uses models, codecs and system (never profiler, search or
report), and cli sits on top of everything."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import optimizer
from optimizer.codecs import CODECS

LAYERS = [
    "errors",
    "pinning",
    "imaging",
    "protocol",
    "config",
    "data",
    "models",
    "codecs",
    "profiler",
    "system",
    "search",
]
LAYERS += ["report", "deploy", "cli"]
FORBIDDEN_FOR = {"deploy": {"search", "report", "profiler"}}
ROOT = Path(optimizer.__file__).parent


def _layer_of(path: Path) -> str:
    rel = path.relative_to(ROOT).parts
    return rel[0].removesuffix(".py")


def _imported_layers(path: Path) -> set[str]:
    layers = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "optimizer" and len(parts) > 1:
                layers.add(parts[1])
    return layers


def test_imports_flow_one_way() -> None:
    violations = []
    for path in ROOT.rglob("*.py"):
        layer = _layer_of(path)
        if layer not in LAYERS:
            continue
        allowed = set(LAYERS[: LAYERS.index(layer) + 1]) - FORBIDDEN_FOR.get(layer, set())
        for imported in _imported_layers(path) - allowed:
            violations.append(f"{path.relative_to(ROOT)} imports optimizer.{imported}")
    assert not violations, violations


def test_every_package_is_a_known_layer() -> None:
    packages = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages <= set(LAYERS), packages - set(LAYERS)


def test_only_cli_prints_or_exits() -> None:
    offenders = []
    for path in ROOT.rglob("*.py"):
        if _layer_of(path) == "cli" or path.name == "__main__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} print")
            if isinstance(node, ast.Attribute) and node.attr == "exit" and getattr(node.value, "id", "") == "sys":
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} sys.exit")
    assert not offenders, offenders


# Model families are named only in optimizer/models (their adapters and the zoo); everything else goes
# through model specs and the registry.
FAMILY_NAME = re.compile(r"mobilenet|resnet|efficientnet|regnet", re.IGNORECASE)


def _docstring_ids(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def _family_names(path: Path) -> list[str]:
    """Identifiers and string literals (not docstrings or comments) that name a model family."""
    tree = ast.parse(path.read_text())
    docstrings = _docstring_ids(tree)
    found = []
    for node in ast.walk(tree):
        texts: list[str] = []
        if isinstance(node, ast.Name):
            texts = [node.id]
        elif isinstance(node, ast.Attribute):
            texts = [node.attr]
        elif isinstance(node, ast.alias):
            texts = [node.name, node.asname or ""]
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            texts = [node.name]
        elif isinstance(node, ast.arg):
            texts = [node.arg]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            texts = [node.value]
        found += [f"{getattr(node, 'lineno', 0)}: {t[:50]!r}" for t in texts if FAMILY_NAME.search(t)]
    return found


def test_only_models_names_model_families() -> None:
    offenders = {}
    for path in ROOT.rglob("*.py"):
        if _layer_of(path) == "models" or path.name == "__main__.py":
            continue
        names = _family_names(path)
        if names:
            offenders[path.relative_to(ROOT).as_posix()] = names
    assert not offenders, (
        f"name model families only in optimizer/models (use model specs and the registry): {offenders}"
    )


def test_the_family_check_sees_names_and_strings_but_not_docstrings(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text('"""About MobileNetV2."""\nfrom x import build_resnet\nSPEC = "efficientnet_b0"\n# regnet\n')
    assert [n.split(": ")[1] for n in _family_names(source)] == ["'build_resnet'", "'efficientnet_b0'"]


# One codec contract: outside optimizer/codecs nothing dispatches on a codec's kind (a comparison with
# a registered kind's name) or its class (isinstance with a codec class); what the rest of the code
# needs to know, the contract says (place, transforms, traits).
CODEC_KINDS = set(CODECS)
CODEC_CLASSES = {c.__name__ for c in CODECS.values()} | {"Codec"}


def _names_a_kind(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return node.value in CODEC_KINDS
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return any(_names_a_kind(e) for e in node.elts)
    return False


def _names_a_codec_class(node: ast.AST) -> bool:
    if isinstance(node, ast.Name | ast.Attribute):
        return (node.id if isinstance(node, ast.Name) else node.attr) in CODEC_CLASSES
    if isinstance(node, ast.Tuple):
        return any(_names_a_codec_class(e) for e in node.elts)
    if isinstance(node, ast.BinOp):  # A | B
        return _names_a_codec_class(node.left) or _names_a_codec_class(node.right)
    return False


def _reads_a_kind(node: ast.AST) -> bool:
    """``x.kind``, ``kind``, ``codec_kind``, ``p["kind"]`` or ``p.get("kind")``."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Attribute) and sub.attr == "kind":
            return True
        if isinstance(sub, ast.Name) and sub.id.endswith("kind"):
            return True
        if isinstance(sub, ast.Constant) and sub.value == "kind":
            return True
    return False


def _codec_dispatch(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        operands = [node.left, *node.comparators] if isinstance(node, ast.Compare) else []
        if any(_names_a_kind(n) for n in operands) and any(_reads_a_kind(n) for n in operands):
            found.append(f"{node.lineno}: compares a kind with a codec kind")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("isinstance", "issubclass")
            and len(node.args) == 2
            and _names_a_codec_class(node.args[1])
        ):
            found.append(f"{node.lineno}: isinstance with a codec class")
    return found


def test_nothing_outside_codecs_dispatches_on_a_codec_kind_or_class() -> None:
    offenders = {}
    for path in ROOT.rglob("*.py"):
        if _layer_of(path) == "codecs":
            continue
        found = _codec_dispatch(path)
        if found:
            offenders[path.relative_to(ROOT).as_posix()] = found
    assert not offenders, f"dispatch through the codec contract (optimizer.codecs), not on kinds: {offenders}"


def test_the_dispatch_check_sees_kind_comparisons_and_codec_isinstance(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        'if t.kind == "float16": pass\n'
        'if p["kind"] in ("image", "class-id"): pass\n'
        "if isinstance(c, FeatureCodec | BottleneckCodec): pass\n"
        'if weights == "file": pass\n'
        "if isinstance(x, dict): pass\n"
        'if unit == "float16": pass\n'  # a name that is also a codec kind, but no codec's kind
    )
    assert [f.split(": ")[0] for f in _codec_dispatch(source)] == ["1", "2", "3"]
