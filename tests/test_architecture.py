"""Imports flow one way: errors <- imaging, protocol <- config <- data <- models <- codecs <- profiler
<- system <- search <- report, deploy uses models, codecs and system (never profiler, search or
report), and cli sits on top of everything."""

from __future__ import annotations

import ast
from pathlib import Path

import optimizer

LAYERS = ["errors", "imaging", "protocol", "config", "data", "models", "codecs", "profiler", "system", "search"]
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
