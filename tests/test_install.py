"""What a plain `pip install split-opt` brings must be enough: every module the package imports at
run time (lazily or not) comes from the standard library or a declared dependency."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import optimizer

ROOT = Path(optimizer.__file__).parent
PYPROJECT = ROOT.parent / "pyproject.toml"


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared(extra: str | None = None) -> set[str]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    reqs = project["dependencies"] if extra is None else project["optional-dependencies"][extra]
    return {_normalise(re.split(r"[\s\[<>=!~;]", req, maxsplit=1)[0]) for req in reqs}


def _top_level_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_every_runtime_import_is_a_declared_dependency() -> None:
    declared = _declared()
    distributions = importlib.metadata.packages_distributions()
    undeclared = []
    for path in sorted(ROOT.rglob("*.py")):
        for name in _top_level_imports(path) - set(sys.stdlib_module_names) - {"optimizer", "__future__"}:
            dists = {_normalise(d) for d in distributions.get(name, [name])}
            if not dists & declared:
                undeclared.append(f"{path.relative_to(ROOT.parent)} imports {name} (from {sorted(dists)})")
    assert not undeclared, undeclared


def test_the_postgres_extra_brings_the_driver_of_a_plain_postgresql_url() -> None:
    """SQLAlchemy maps postgresql:// to its default PostgreSQL driver; the extra must install that one."""
    from sqlalchemy.engine import make_url

    driver = make_url("postgresql://user@host/db").get_dialect().driver  # type: ignore[attr-defined]
    module = {"psycopg": "psycopg", "psycopg2": "psycopg2"}[driver]
    dists = {_normalise(d) for d in importlib.metadata.packages_distributions()[module]}
    assert dists & _declared("postgres"), (driver, dists)
    assert "split-opt[postgres]" in tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]["dev"]


def test_the_version_follows_the_changelog() -> None:
    changelog = (ROOT.parent / "CHANGELOG.md").read_text()
    newest = re.search(r"^## (\S+)", changelog, re.MULTILINE)
    assert newest is not None
    assert tomllib.loads(PYPROJECT.read_text())["project"]["version"] == optimizer.__version__ == newest.group(1)


def test_the_suite_caches_in_a_temporary_folder(private_cache_dir: Path) -> None:
    from optimizer.profiler import cache_dir

    assert cache_dir() == private_cache_dir and Path.home() not in cache_dir().parents
