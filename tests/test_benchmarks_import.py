"""Every script in benchmarks/ imports cleanly.

The scripts do their work under ``if __name__ == "__main__":`` only, so importing one runs nothing
but checks that every name it imports from optimizer (and from its helpers beside it) still exists:
a renamed or removed API fails here instead of in a benchmark run much later. What the scripts
compute is checked by running them (each docstring gives its command); this is only the cheap part.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(BENCHMARKS.glob("*.py"))


def test_benchmarks_found() -> None:
    assert len([p for p in SCRIPTS if p.name.startswith("bench_")]) >= 10


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.stem)
def test_benchmark_imports(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", [str(BENCHMARKS), *sys.path])  # the scripts' own inserts are undone too
    runnable = path.name.startswith("bench_")
    if runnable:
        assert 'if __name__ == "__main__":' in path.read_text(), f"{path.name} runs on import; add a main guard"
    spec = importlib.util.spec_from_file_location(f"benchmarks_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up while it runs
    spec.loader.exec_module(module)
    if runnable:
        assert callable(getattr(module, "main", None)), f"{path.name} has no main()"
