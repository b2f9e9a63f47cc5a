"""A tiny study and its bundles, shared by the deploy tests (built once per test module).

The study: the bundled trained MobileNetV2(0.35) on the fake Fashion-MNIST (400 official test images,
so the test split holds 200), input 32, every block boundary; the references give k = 0 (PNG),
k = 17 (float16, features.9) and k = 35 (class id), and one enqueued trial gives blocked PCA + ANS
at k = 10 (features.4) (conftest.TINY_K).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from conftest import TINY_K, TINY_MODEL, make_fake_fashion, write_tiny_space

from optimizer.cli import main
from optimizer.config import load_search_space
from optimizer.search import Config, Evaluator, build_evaluator

ROOT = Path(__file__).resolve().parents[1]
PI4 = ROOT / "profiles" / "pi4.yaml"
PCA_TRIAL = {"model": TINY_MODEL, "input_size": 32, "k": TINY_K["pca"], "codec": "pca", "geometry": "channel"}
PCA_TRIAL |= {"components": 4, "bits": 4, "coder": "ans"}


@dataclass(frozen=True)
class TinyStudy:
    root: Path
    space: Path
    report: Path
    pareto: dict[str, Any]

    def trial_of(self, **params: Any) -> int:
        """The number of the completed trial whose parameters include ``params``."""
        study = optuna.load_study(study_name="t", storage=f"sqlite:///{self.report / 'study.db'}")
        for trial in study.trials:
            if all(trial.params.get(k) == v for k, v in params.items()):
                return trial.number
        raise LookupError(params)

    def export(self, trial: int, name: str) -> Path:
        """The bundle of ``trial`` (exported once per test session)."""
        out = self.root / "deploy" / name
        if out.is_dir():
            return out
        args = ["export", str(self.report), "--trial", str(trial), "--out", str(out)]
        assert main([*args, "--search-space", str(self.space), "--format", "json"]) == 0
        return out

    def evaluator(self) -> Evaluator:
        return build_evaluator(load_search_space(self.space), None, None)


def _space(root: Path) -> Path:
    fashion = make_fake_fashion(root / "fmnist", n_train=50, n_test=400)
    return write_tiny_space(
        root,
        fashion,
        weights="zoo",  # the trained 0.35 model: confident logits, so comparing predictions can fail
        pca={"geometry": ["channel"], "components": [4], "bits": [4], "coders": ["ans"]},
        image={"formats": ["png"], "qualities": [50]},
        samples={"calib": 40, "val": 30},
    )


_SHARED: list[TinyStudy] = []


def shared_tiny_study(factory: pytest.TempPathFactory) -> TinyStudy:
    """One tiny study for every deploy test module of the session (it takes a search to build)."""
    if not _SHARED:
        _SHARED.append(build_tiny_study(factory.mktemp("deploy")))
    return _SHARED[0]


def build_tiny_study(root: Path) -> TinyStudy:
    space = _space(root)
    args = ["search", "--device", str(PI4), "--search-space", str(space), "--reports-dir", str(root / "reports")]
    args += ["--study", "t", "--sampler", "random", "--budget-kb", "5", "--trials", "1", "--format", "json"]
    assert main(args) == 0  # the references: PNG at k = 0, float16 and the class id (TINY_K)
    report = root / "reports" / "t"
    optuna.load_study(study_name="t", storage=f"sqlite:///{report / 'study.db'}").enqueue_trial(PCA_TRIAL)
    assert main(args) == 0  # resumed: runs the enqueued PCA trial
    return TinyStudy(root, space, report, json.loads((report / "pareto.json").read_text()))


def engine_predictions(evaluator: Evaluator, config: Config) -> tuple[np.ndarray, np.ndarray]:
    """(predicted class, payload bytes) per test image, computed the way the study scores a configuration."""
    result = evaluator.evaluate(config, "test")
    assert result.predicted is not None
    return result.predicted, result.payload_bytes
