"""SIGKILL in the middle of `zoo train` and `bottleneck train`: the same command run again resumes
from the last checkpoint and finishes, with no step lost or repeated (tiny data, a few steps)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import make_fake_fashion, write_tiny_space

from optimizer.cli import main

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def _kill_after_first_checkpoint(args: list[str], ckpt: Path, log: Path) -> int:
    """Run ``split-opt ARGS`` until ``ckpt`` appears, SIGKILL it, and return the checkpoint's step."""
    with log.open("w") as out:
        process = subprocess.Popen([sys.executable, "-m", "optimizer", *args], cwd=ROOT, stdout=out, stderr=out)
        try:
            deadline = time.monotonic() + 180
            while not ckpt.exists():  # the trainer's own checkpoint is the signal, no fixed sleep
                assert process.poll() is None, f"the run ended before its first checkpoint: {log.read_text()}"
                assert time.monotonic() < deadline, "no checkpoint within 180 s"
                time.sleep(0.005)
            os.kill(process.pid, signal.SIGKILL)
        finally:
            process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed; give it more steps"
    return int(torch.load(ckpt, weights_only=True)["step"])


def _spy_progress(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[int]:
    """Record the step numbers the resumed command's trainer reports."""
    seen: list[int] = []
    real = getattr(module, name)

    def spying(*args: Any, progress: Any = None, **kwargs: Any) -> Any:
        def record(step: int, total: int, info: dict[str, float]) -> None:
            seen.append(step)
            if progress is not None:
                progress(step, total, info)

        return real(*args, progress=record, **kwargs)

    monkeypatch.setattr(module, name, spying)
    return seen


def test_zoo_train_killed_then_resumed_finishes_every_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import optimizer.cli._zoo as zoo_cli

    fashion = make_fake_fashion(tmp_path / "fmnist", n_train=80, n_test=40)
    out = tmp_path / "zoo"
    args = ["zoo", "train", "--alpha", "0.35", "--dataset", f"fashion-mnist:{fashion}", "--input-sizes", "32"]
    args += ["--epochs", "3", "--batch-size", "16", "--train-samples", "64", "--eval-samples", "20"]
    args += ["--name", "killed", "--out", str(out), "--format", "json"]
    total = 3 * (64 // 16)
    step = _kill_after_first_checkpoint(args, out / "killed.ckpt", tmp_path / "killed.log")
    assert 0 < step < total and step % 4 == 0  # checkpoints at epoch ends (4 steps each)
    assert not (out / "killed.pt").exists()
    seen = _spy_progress(monkeypatch, zoo_cli, "train_zoo_model")
    assert main(args) == 0  # the same command
    card = json.loads(capsys.readouterr().out)
    assert seen == list(range(step + 1, total + 1)), (step, seen[:3])  # from the checkpoint on, each step once
    assert card["epochs"] == 3
    assert (out / "killed.pt").is_file() and not (out / "killed.ckpt").exists()
    assert not list(out.glob("*.tmp"))


def test_bottleneck_train_killed_then_resumed_equals_an_uninterrupted_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import optimizer.cli._bottleneck as bottleneck_cli

    fashion = make_fake_fashion(tmp_path / "fmnist", n_train=120, n_test=60)
    write_tiny_space(tmp_path, fashion)
    args = ["bottleneck", "train", "--alpha", "0.35", "--input-size", "32", "--split", "features.4", "--beta", "0.01"]
    args += ["--dataset", f"fashion-mnist:{fashion}", "--weights", f"file:{tmp_path / 'w_0.35.pt'}"]
    args += ["--epochs", "3", "--batch-size", "16", "--train-samples", "64", "--eval-samples", "20"]
    args += ["--threads", "1", "--format", "json"]
    total = 3 * (64 // 16)
    killed = [*args, "--out", str(tmp_path / "killed")]
    assert main([*args, "--out", str(tmp_path / "straight")]) == 0
    straight = json.loads(capsys.readouterr().out)
    ckpt = tmp_path / "killed" / f"{straight['name']}.ckpt"
    step = _kill_after_first_checkpoint(killed, ckpt, tmp_path / "killed.log")
    assert 0 < step < total
    seen = _spy_progress(monkeypatch, bottleneck_cli, "train_bottleneck")
    assert main(killed) == 0
    resumed = json.loads(capsys.readouterr().out)
    assert seen == list(range(step + 1, total + 1)), (step, seen[:3])
    assert resumed["steps"] == straight["steps"] == total
    a = torch.load(tmp_path / "straight" / f"{straight['name']}.pt", weights_only=True)
    b = torch.load(tmp_path / "killed" / f"{resumed['name']}.pt", weights_only=True)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], msg=key)
    assert not ckpt.exists()
