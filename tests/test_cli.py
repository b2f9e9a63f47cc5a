"""The command line: help everywhere, JSON output, and the user-error rule (one line, exit 2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from optimizer.cli import main
from optimizer.models import build_mobilenetv2


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's own exits (--help, usage errors)
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "argv", [[], ["zoo"], ["zoo", "list"], ["zoo", "train"], ["zoo", "eval"], ["splits"], ["profile"], ["calibrate"]]
)
def test_every_command_has_help(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, out, _ = run_cli(capsys, *argv, "--help")
    assert code == 0 and "usage: split-opt" in out


def test_zoo_list_json_contract(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "zoo", "list", "--format", "json")
    assert code == 0
    models = json.loads(out)
    for model in models:
        for key in ("name", "family", "alpha", "dataset", "source", "num_classes", "input_sizes", "accuracy"):
            assert key in model, key
        assert isinstance(model["input_sizes"], list)
        assert all(isinstance(k, str) and 0 <= v <= 1 for k, v in model["accuracy"].items())
    assert any(m["source"] == "torchvision" for m in models)


def test_splits_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "splits", "--alpha", "0.5", "--input-size", "32", "--format", "json")
    doc = json.loads(out)
    assert code == 0 and [s["k"] for s in doc["splits"]] == list(range(36))
    assert sum(s["block"] for s in doc["splits"]) == 21 and doc["splits"][0]["shape"] == [3, 32, 32]


def _weights_file(tmp_path: Path, alpha: float) -> Path:
    path = tmp_path / f"w{alpha}.pt"
    torch.save(build_mobilenetv2(alpha, 10).state_dict(), path)
    return path


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"junk")
    return {
        "unknown dataset spec": (["zoo", "eval", "--alpha", "1.0", "--dataset", "mnist"], "unknown dataset spec"),
        "missing data": (
            ["zoo", "eval", "--alpha", "1.0", "--dataset", f"fashion-mnist:{tmp_path}/none"],
            "apt-get install",
        ),
        "unreadable weights": (
            ["zoo", "eval", "--alpha", "1.0", "--weights", f"file:{garbage}"],
            "cannot read weight file",
        ),
        "mismatched weights": (
            ["zoo", "eval", "--alpha", "1.0", "--weights", f"file:{_weights_file(tmp_path, 0.35)}"],
            "do not fit MobileNetV2 alpha=1",
        ),
        "alpha not in zoo": (["zoo", "eval", "--alpha", "0.6"], "no mobilenetv2 with alpha=0.6"),
        "negative input size": (["splits", "--alpha", "1", "--input-size", "-3"], "at least 32"),
        "negative train size": (["zoo", "train", "--alpha", "0.35", "--input-sizes", "-3"], "at least 32"),
        "bad number": (["zoo", "train", "--alpha", "big"], "invalid float value"),
    }


BAD_CASES = [
    "unknown dataset spec",
    "missing data",
    "unreadable weights",
    "mismatched weights",
    "alpha not in zoo",
    "negative input size",
    "negative train size",
    "bad number",
]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_is_one_line_exit_2(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    case: str,
    fake_fashion_root: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SPLIT_OPT_FASHION_MNIST", str(fake_fashion_root))
    argv, needle = _bad_inputs(tmp_path)[case]
    code, out, err = run_cli(capsys, *argv)
    assert code == 2, (code, err)
    assert out == "" and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("split-opt: error:") and needle in err


def test_debug_shows_the_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "--debug", "splits", "--alpha", "1", "--input-size", "-3")
    assert code == 2 and "Traceback" in err and "at least 32" in err


def test_console_script_and_module_entry_points() -> None:
    script = Path(sys.executable).with_name("split-opt")
    for cmd in ([str(script)], [sys.executable, "-m", "optimizer"]):
        done = subprocess.run(
            [*cmd, "splits", "--alpha", "1", "--input-size", "-3"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr


PI4 = Path(__file__).resolve().parents[1] / "profiles" / "pi4.yaml"
PROFILE_SPLIT_KEYS = (
    "k",
    "name",
    "shape",
    "activation_bytes_fp32",
    "macs",
    "cum_macs",
    "head_weight_bytes",
    "peak_activation_bytes",
    "latency_ms",
    "energy_mj",
    "fits_memory",
)


def test_profile_json_contract(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(
        capsys,
        "profile",
        "--device",
        str(PI4),
        "--alpha",
        "1.0",
        "--input-size",
        "224",
        "--num-classes",
        "1000",
        "--format",
        "json",
    )
    doc = json.loads(out)
    assert code == 0 and doc["device"] == "pi4"
    assert doc["model"] == {
        "spec": "mobilenetv2:alpha=1.0",
        "family": "mobilenetv2",
        "params": {"alpha": 1.0},
        "input_size": 224,
        "num_classes": 1000,
    }
    assert abs(doc["total_macs"] - 300e6) <= 0.015 * 300e6
    assert [s["k"] for s in doc["splits"]] == list(range(36))  # the fx split points (docs/models.md)
    for key in PROFILE_SPLIT_KEYS:
        assert key in doc["splits"][0], key
    assert 55 <= doc["splits"][-1]["latency_ms"] <= 85


def test_profile_csv_and_measure(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(
        capsys,
        "profile",
        "--device",
        str(PI4),
        "--alpha",
        "0.35",
        "--input-size",
        "32",
        "--format",
        "csv",
        "--measure",
        "--repeats",
        "2",
    )
    lines = out.strip().splitlines()
    assert code == 0 and len(lines) == 37 and "measured_latency_ms" in lines[0]


def test_profile_any_model_spec(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["profile", "--device", str(PI4), "--model", "resnet18", "--input-size", "32", "--format", "json"]
    code, out, _ = run_cli(capsys, *args)
    doc = json.loads(out)
    assert code == 0 and doc["model"]["spec"] == "resnet18" and doc["splits"][2]["name"] == "maxpool"
    code, _, err = run_cli(capsys, "profile", "--device", str(PI4), "--model", "resnet18", "--alpha", "0.5")
    assert code == 2 and "not both" in err


def test_profile_num_classes_follow_weights(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "w.pt"
    torch.save(build_mobilenetv2(0.35, 7).state_dict(), path)
    args = ["profile", "--device", str(PI4), "--alpha", "0.35", "--input-size", "32", "--weights", f"file:{path}"]
    code, out, _ = run_cli(capsys, *args, "--format", "json")
    assert code == 0 and json.loads(out)["model"]["num_classes"] == 7
    code, _, err = run_cli(capsys, *args, "--num-classes", "10")
    assert code == 2 and "disagrees" in err


def test_malformed_profile_is_one_line_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(PI4.read_text().replace("rtt_ms:", "rtt_msec:"))
    code, out, err = run_cli(capsys, "profile", "--device", str(bad))
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert str(bad) in err and "network.rtt_msec: unknown key" in err
    code, _, err = run_cli(capsys, "profile", "--device", str(tmp_path / "none.yaml"))
    assert code == 2 and "does not exist" in err


def test_calibrate_writes_a_loadable_profile(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from optimizer.config import load_device_profile

    out_path = tmp_path / "mine.yaml"
    code, out, _ = run_cli(
        capsys,
        "calibrate",
        "--device",
        str(PI4),
        "--out",
        str(out_path),
        "--name",
        "mine",
        "--models",
        "mobilenetv2:alpha=0.35@32,resnet18@32",
        "--repeats",
        "2",
        "--format",
        "json",
    )
    assert code == 0, out
    summary = json.loads(out)
    profile = load_device_profile(out_path)
    assert profile.name == "mine" and summary["samples"] == 2 * (35 + 13)  # every segment alone and every head
    assert summary["models"] == ["mobilenetv2:alpha=0.35@32", "resnet18@32"]
    assert "split-opt calibrate" in profile.compute.pointwise_macs_per_s.source
    assert "split-opt calibrate" in profile.compute.pool_ops_per_s.source  # ResNet's max-pool was measured
    assert profile.compute.grouped_macs_per_s == load_device_profile(PI4).compute.grouped_macs_per_s  # none seen
    assert profile.network == load_device_profile(PI4).network  # only the compute section changes
    code, _, err = run_cli(capsys, "calibrate", "--device", str(PI4), "--out", str(out_path), "--models", "big")
    assert code == 2 and "SPEC@SIZE" in err
