"""The device path (infer, and calibrate --kit) imports no torch (nor the rest of the full install),
and the device package (packaging/device) ships every module it imports. CI also builds that
package into a fresh venv without torch and runs infer and calibrate --kit from it
(scripts/device_check.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_K
from deploy_fixtures import ROOT, TinyStudy
from PIL import Image

FULL_ONLY = {"torch", "torchvision", "fvcore", "optuna", "plotly", "yaml", "tqdm", "onnx", "sklearn"}
SERVER_ONLY = {"fastapi", "starlette", "uvicorn", "pydantic", "wsproto"}
# What `split-opt infer` (HTTP and --stream) and `serve` import, as the CLI imports them.
IMPORTS = {
    "device": "build_parser(['infer']); import optimizer.deploy._client, optimizer.deploy._stream; "
    "import optimizer.deploy._adaptive",
    "server": "build_parser(['serve']); import optimizer.deploy._server",
    # what `calibrate --kit` imports: the kit's reader, its timing and fit, the profile's YAML
    "calibrate": "build_parser(['calibrate']); from optimizer.profiler import calibrate_from_kit, open_kit",
}
PROBE = """
import json, sys
from optimizer.cli._main import build_parser
{imports}
print(json.dumps(sorted(sys.modules)))
"""


def _modules(half: str) -> set[str]:
    code = PROBE.format(imports=IMPORTS[half].replace("; ", "\n"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return set(json.loads(done.stdout))


@pytest.mark.parametrize("half", ["device", "server", "calibrate"])
def test_the_deployed_halves_import_no_torch(half: str) -> None:
    modules = _modules(half)
    assert "torch" not in modules
    # the device install brings pyyaml for calibrate's profiles; infer and serve still never load it
    assert not {m.split(".")[0] for m in modules} & (FULL_ONLY - {"yaml"} if half == "calibrate" else FULL_ONLY)
    if half == "calibrate":
        assert {"onnxruntime", "numpy", "yaml", "optimizer.profiler._kit_run"} <= modules
        assert not {"optimizer.profiler._measure", "optimizer.profiler._cache", "optimizer.models"} & modules
    if half == "device":
        assert not {m.split(".")[0] for m in modules} & SERVER_ONLY
        assert {"onnxruntime", "constriction", "numpy", "PIL", "httpx", "websocket"} <= modules


def test_the_device_package_ships_every_module_the_halves_import() -> None:
    config = tomllib.loads((ROOT / "packaging" / "device" / "pyproject.toml").read_text())
    packages = set(config["tool"]["setuptools"]["packages"])
    imported = _modules("device") | _modules("server") | _modules("calibrate")
    ours = {m for m in imported if m.split(".")[0] == "optimizer"}
    package_of = {m: m if (ROOT / m.replace(".", "/")).is_dir() else m.rpartition(".")[0] for m in ours}
    assert set(package_of.values()) <= packages, {m: p for m, p in package_of.items() if p not in packages}
    names = " ".join(config["project"]["dependencies"] + config["project"]["optional-dependencies"]["server"])
    dists = ("numpy", "onnxruntime", "pillow", "constriction", "httpx", "websocket-client", "pyyaml", "fastapi")
    for dist in (*dists, "uvicorn", "prometheus-client"):  # /metrics
        assert dist in names, dist


def test_infer_runs_with_torch_blocked(tiny: TinyStudy, tmp_path: Path) -> None:
    """``sys.modules["torch"] = None`` makes any torch import fail: infer --local must not try one."""
    bundle = tiny.export(tiny.trial_of(k=TINY_K["pca"], codec="pca"), "pca")
    image = tmp_path / "x.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)).save(image)
    code = (
        "import sys; sys.modules['torch'] = sys.modules['torchvision'] = None\n"
        "from optimizer.cli import main\n"
        f"raise SystemExit(main(['infer', {str(bundle)!r}, {str(image)!r}, '--local', '--format', 'json']))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    (result,) = json.loads(done.stdout)["results"]
    assert result["payload_bytes"] > 0 and result["label"]


def test_the_lazy_parser_knows_every_command_once() -> None:
    """A new command must be added to COMMAND_MODULES, or `split-opt NEW` would not parse."""
    from optimizer.cli._commands import COMMAND_MODULES
    from optimizer.cli._main import build_parser

    listed = [command for commands, _, _ in COMMAND_MODULES for command in commands]
    assert len(listed) == len(set(listed))
    (sub,) = [a for a in build_parser()._actions if a.dest == "command"]
    assert list(sub.choices) == listed  # type: ignore[union-attr]
    assert sub.metavar == "{" + ",".join(listed) + "}"
    for command in listed:
        (only,) = [a for a in build_parser([command])._actions if a.dest == "command"]
        assert command in only.choices  # type: ignore[operator]
