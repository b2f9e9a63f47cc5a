"""The calibration kit: made by the full install (``calibrate --make-kit``), timed and fitted by the
device install without torch (``calibrate --kit``), refused when altered. Timings are never asserted:
only that the run completes, fits positive finite prices and writes the keys today's calibrate writes."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from deploy_fixtures import PI4, ROOT
from test_cli import run_cli
from tiny_nets import TINY_NET

import optimizer.profiler
from optimizer.config import load_device_profile
from optimizer.errors import UserError
from optimizer.profiler import COMPUTE_KEYS, KIT_MANIFEST, make_kit, open_kit, spec_costs

SPEC = TINY_NET
SIZE = 32

# The device's run, as the device install runs it: torch (and the rest of the full install) cannot be imported.
DEVICE_RUN = """
import sys
for name in ("torch", "torchvision", "fvcore", "optuna", "onnx", "tqdm", "plotly", "sklearn"):
    sys.modules[name] = None
from optimizer.cli import main
code = main(sys.argv[1:])
assert not [m for m in sys.modules if m.split(".")[0] == "torch" and sys.modules[m] is not None]
raise SystemExit(code)
"""


def _device_calibrate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", DEVICE_RUN, "calibrate", *args], capture_output=True, text=True, cwd=ROOT, timeout=300
    )


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("kit") / "kit"
    make_kit(folder, [(SPEC, SIZE)])
    return folder


def test_the_kit_holds_each_graph_its_terms_and_their_hashes(kit: Path) -> None:
    opened = open_kit(kit)
    (model,) = opened.models
    segments = spec_costs(SPEC, 10, SIZE).segments
    assert model.segments == segments  # the countable terms survive the JSON round trip exactly
    assert len(model.segment_graphs) == len(model.head_graphs) == len(segments) > 3
    manifest = json.loads((kit / KIT_MANIFEST).read_text())
    on_disk = {p.name for p in kit.iterdir()} - {KIT_MANIFEST}
    assert set(manifest["files"]) == on_disk and (kit / "weights.bin").stat().st_size > 0
    assert opened.parts == ("compute", "coding") and manifest["made_by"]["split_opt"]


def test_the_device_run_fits_and_writes_the_keys_calibrate_writes(
    kit: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "device.yaml"
    done = _device_calibrate("--kit", str(kit), "--device", str(PI4), "--out", str(out), "--repeats", "2",
                             "--name", "kit-device", "--format", "json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["kit"] == str(kit) and summary["models"] == [f"{SPEC}@{SIZE}"]
    assert summary["samples"] == 2 * len(open_kit(kit).models[0].segments)  # every segment alone and every head
    fitted = {**summary["fitted"], **summary["coding"]}
    assert set(summary["fitted"]) <= set(COMPUTE_KEYS) and summary["coding"]
    assert all(math.isfinite(v) and v > 0 for k, v in fitted.items() if k.endswith("_per_s"))
    assert all(math.isfinite(v) and v >= 0 for v in fitted.values())  # an overhead the fit finds none of is 0
    profile = load_device_profile(out)
    assert profile.name == "kit-device"
    assert "split-opt calibrate --kit" in profile.compute.pointwise_macs_per_s.source
    assert "split-opt calibrate --kit" in profile.coding.ans_symbols_per_s.source

    host = tmp_path / "host.yaml"  # today's calibrate on the same model, in the full install
    code, text, _ = run_cli(capsys, "calibrate", "--device", str(PI4), "--out", str(host),
                            "--models", f"{SPEC}@{SIZE}", "--repeats", "2", "--format", "json")  # fmt: skip
    assert code == 0
    assert set(json.loads(text)["fitted"]) == set(summary["fitted"])
    device_doc, host_doc = yaml.safe_load(out.read_text()), yaml.safe_load(host.read_text())
    for section in ("compute", "coding"):
        assert set(device_doc[section]) == set(host_doc[section]), section


def _one_line_refusal(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 2 and done.stdout == "", done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    for word in words:
        assert word in done.stderr, (word, done.stderr)


@pytest.mark.parametrize("damage", ["weights", "graph", "missing", "manifest", "format"])
def test_an_altered_kit_is_refused_in_one_line(kit: Path, tmp_path: Path, damage: str) -> None:
    copy = tmp_path / "kit"
    shutil.copytree(kit, copy)
    graph = sorted(copy.glob("*-head-*.onnx"))[-1]
    manifest = copy / KIT_MANIFEST
    if damage == "weights":
        data = bytearray((copy / "weights.bin").read_bytes())
        data[-1] ^= 0xFF
        (copy / "weights.bin").write_bytes(bytes(data))
        words = ("weights.bin", "sha256", "altered", "--make-kit")
    elif damage == "graph":
        graph.write_bytes(graph.read_bytes() + b"\0")
        words = (graph.name, "sha256", "altered")
    elif damage == "missing":
        graph.unlink()
        words = (graph.name, "missing")
    elif damage == "manifest":
        manifest.unlink()
        words = ("not a calibration kit", KIT_MANIFEST, "--make-kit")
    else:
        manifest.write_text(manifest.read_text().replace('"format": 1', '"format": 99'))
        words = ("kit format 99", "reads format 1")
    out = tmp_path / "p.yaml"
    _one_line_refusal(_device_calibrate("--kit", str(copy), "--device", str(PI4), "--out", str(out)), *words)
    assert not out.exists()


@pytest.mark.parametrize("way", ["measure here", "make a kit"])
def test_the_device_install_says_how_to_calibrate_without_torch(tmp_path: Path, way: str) -> None:
    args = ["--make-kit", str(tmp_path / "kit")] if way == "make a kit" else ["--device", str(PI4), "--out", "p.yaml"]
    _one_line_refusal(_device_calibrate(*args), "needs the full install", "--make-kit DIR", "--kit DIR")
    assert not (tmp_path / "kit").exists()


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--make-kit", "K", "--kit", "K"], "not both"),
        (["--make-kit", "K", "--device", str(PI4)], "drop --device"),
        (["--kit", "K"], "needs --device and --out"),
        (["--kit", "K", "--device", str(PI4), "--out", "p.yaml", "--models", "x@32"], "drop --models"),
        (["--kit", "K", "--device", str(PI4), "--out", "p.yaml", "--runtime", "torch"], "drop --models and --runtime"),
        (["--make-kit", "K", "--parts", "both"], "--parts takes compute, coding"),
    ],
)
def test_calibrate_options_that_clash_are_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], words: str
) -> None:
    code, out, err = run_cli(capsys, "calibrate", *argv)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and words in err, err


def test_make_kit_keeps_other_files_and_replaces_its_own(kit: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not a kit's"):
        make_kit(other, [(SPEC, SIZE)], ("coding",))
    assert (other / "notes.txt").read_text() == "mine"
    again = tmp_path / "again"
    shutil.copytree(kit, again)
    coding_only = make_kit(again, [(SPEC, SIZE)], ("coding",))  # replaces the kit made before
    assert (
        coding_only.parts == ("coding",)
        and not coding_only.models
        and sorted(again.iterdir()) == [again / KIT_MANIFEST]
    )


def test_a_kit_without_graphs_cannot_calibrate_compute(tmp_path: Path) -> None:
    coding_only = tmp_path / "coding-kit"
    make_kit(coding_only, [], ("coding",))
    done = _device_calibrate("--kit", str(coding_only), "--device", str(PI4), "--out", str(tmp_path / "p.yaml"),
                             "--parts", "compute")  # fmt: skip
    _one_line_refusal(done, "no graphs to time", "--parts coding")


def test_the_profiler_package_loads_each_name_from_its_module() -> None:
    """The lazy package (PEP 562) lists every name it resolves, and each resolves."""
    exports = optimizer.profiler._EXPORTS
    assert set(optimizer.profiler.__all__) == set(exports)
    for name, module in exports.items():
        assert getattr(optimizer.profiler, name) is getattr(sys.modules[f"optimizer.profiler.{module}"], name)
