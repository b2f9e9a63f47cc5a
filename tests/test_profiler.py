"""Profiler: MAC counts against hand counts and the published table, memory, the latency model,
calibration, and the device-profile checks."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from optimizer.config import load_device_profile, load_network_profile
from optimizer.errors import UserError
from optimizer.profiler import count_costs, fit_compute, measure_blocks, model_costs, profile_model

PROFILES = Path(__file__).resolve().parents[1] / "profiles"
# A copy of the published figures, kept in the repository: the suite needs nothing beside the clone.
REFERENCE = Path(__file__).resolve().parent / "data" / "mobilenetv2_published.csv"
SHIPPED = ["pi4", "pi-zero-2w", "jetson-nano", "esp32-s3", "phone", "host"]


class _Tiny(nn.Module):
    """features = [3x3 conv 3->4, BN, ReLU6], [depthwise 3x3, pointwise 4->8]; then a 8->2 classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU6()),
            nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False), nn.Conv2d(4, 8, 1, bias=False)),
        )
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(8, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(x, 1))


def test_hand_counted_tiny_net() -> None:
    costs = count_costs(_Tiny(), 32)
    b0, b1, cls = costs.blocks
    hw = 32 * 32
    assert b0.macs_by_class() == {"conv": 4 * 3 * 9 * hw, "depthwise": 0, "pointwise": 0}
    assert b1.macs_by_class() == {"conv": 0, "depthwise": 4 * 9 * hw, "pointwise": 4 * 8 * hw}
    assert cls.macs == 8 * 2
    assert b0.elementwise_ops == 4 * hw  # ReLU6 only; BatchNorm is folded, not counted
    assert cls.elementwise_ops == 8 * hw  # the global average pool reads every input element
    assert b0.params == 4 * 3 * 9 + 4  # conv weights + folded BatchNorm bias
    assert costs.total_macs == 4 * 3 * 9 * hw + 4 * 9 * hw + 4 * 8 * hw + 16
    # peak of block 1: the pointwise layer's input (4 channels) and output (8 channels) alive together
    assert b1.peak_elements == (4 + 8) * hw


def _published_rows() -> list[dict[str, str]]:
    with REFERENCE.open() as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


@pytest.mark.slow
@pytest.mark.parametrize("row", _published_rows(), ids=lambda r: f"{r['alpha']}-{r['input_size']}")
def test_macs_match_the_published_mobilenetv2_table(row: dict[str, str]) -> None:
    """The table's MACs are whole millions *truncated*, not rounded: for all 22 rows our count
    lies in [published, published + 1 M). (Five small rows, e.g. 0.35/96 = 11.93 M vs 11, are
    outside max(1.5 %, 0.5 M) of the truncated figure for that reason alone.)"""
    costs = model_costs(float(row["alpha"]), 1000, int(row["input_size"]))
    published = float(row["macs_millions"]) * 1e6
    assert published <= costs.total_macs < published + 1e6, costs.total_macs
    params = sum(b.params for b in costs.blocks)
    assert abs(params - float(row["params_millions"]) * 1e6) <= 0.02 * float(row["params_millions"]) * 1e6


def test_cost_cache_round_trips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPLIT_OPT_CACHE_DIR", str(tmp_path))
    model_costs.cache_clear()
    first = model_costs(0.35, 10, 32)
    assert list((tmp_path / "costs").glob("*.json"))
    model_costs.cache_clear()
    assert model_costs(0.35, 10, 32) == first


def _quantities(doc: dict, where: str = "") -> list[tuple[str, dict]]:
    out = []
    for key, value in doc.items():
        if isinstance(value, dict) and "value" in value:
            out.append((f"{where}{key}", value))
        elif isinstance(value, dict):
            out += _quantities(value, f"{where}{key}.")
    return out


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_profiles_load_and_cite_every_number(name: str) -> None:
    profile = load_device_profile(PROFILES / f"{name}.yaml")
    doc = yaml.safe_load((PROFILES / f"{name}.yaml").read_text())
    quantities = _quantities(doc)
    assert len(quantities) >= 45  # compute, memory, network, energy, coding, server (with its coding)
    for where, value in quantities:
        assert str(value["source"]).strip(), where
    assert profile.name == name


@pytest.mark.parametrize("path", sorted((PROFILES / "networks").glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_network_profiles_load_and_cite_every_number(path: Path) -> None:
    network = load_network_profile(path)
    doc = yaml.safe_load(path.read_text())
    quantities = _quantities(doc)
    assert len(quantities) == 7 and network.name == path.stem
    for where, value in quantities:
        assert str(value["source"]).strip(), where


def test_network_profiles_cover_the_links_split_computing_targets() -> None:
    names = {p.stem for p in (PROFILES / "networks").glob("*.yaml")}
    assert {"wifi", "lte", "lte-m", "nb-iot", "lora"} <= names


def test_network_profile_is_strict(tmp_path: Path) -> None:
    doc = yaml.safe_load((PROFILES / "networks" / "lte.yaml").read_text())
    doc["rtt_msec"] = doc.pop("rtt_ms")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    with pytest.raises(UserError, match="rtt_msec: unknown key"):
        load_network_profile(bad)
    doc["rtt_ms"] = doc.pop("rtt_msec")
    doc["mss_bytes"] = {"value": 0, "source": "x"}
    bad.write_text(yaml.safe_dump(doc))
    with pytest.raises(UserError, match="mss_bytes.value: must be > 0"):
        load_network_profile(bad)


def test_pi4_lands_on_the_published_latency() -> None:
    result = profile_model(load_device_profile(PROFILES / "pi4.yaml"), 1.0, 224, 1000)
    assert abs(result.total_macs - 300e6) <= 0.015 * 300e6
    assert 55 <= result.splits[-1].latency_ms <= 85


def test_split_table_is_consistent() -> None:
    result = profile_model(load_device_profile(PROFILES / "pi4.yaml"), 0.5, 64, 10)
    splits = result.splits
    assert [s.k for s in splits] == list(range(21))
    assert splits[0].cum_macs == 0 and splits[0].latency_ms == 0 and splits[0].head_params == 0
    assert splits[-1].cum_macs == result.total_macs
    for a, b in itertools.pairwise(splits):
        assert b.cum_macs == a.cum_macs + b.macs and b.latency_ms > a.latency_ms
        assert b.peak_activation_bytes >= a.peak_activation_bytes
    assert splits[3].activation_bytes_fp32 == 4 * splits[3].activation_elements == 2 * splits[3].activation_bytes_fp16


def test_esp32_marks_heads_that_overflow_flash_or_sram() -> None:
    profile = load_device_profile(PROFILES / "esp32-s3.yaml")
    mem = profile.memory
    assert not mem.shared
    for alpha, size in ((1.0, 224), (0.35, 96), (1.0, 64)):
        for split in profile_model(profile, alpha, size, 10).splits:
            fits = split.head_weight_bytes <= mem.weights_bytes.value and (
                split.peak_activation_bytes <= mem.activation_bytes.value
            )
            assert split.fits_memory == fits
    big = profile_model(profile, 1.0, 224, 10).splits
    assert not big[5].fits_memory  # a 224 x 224 input's early activations overflow 320 KB of SRAM
    assert profile_model(profile, 0.35, 32, 10).splits[5].fits_memory


def _write_profile(tmp_path: Path, edit) -> Path:  # type: ignore[no-untyped-def]
    doc = yaml.safe_load((PROFILES / "pi4.yaml").read_text())
    edit(doc)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


BAD_PROFILES = {
    "unknown key": (
        lambda d: d["compute"].update(gpu_tops={"value": 1, "source": "x"}),
        "compute.gpu_tops: unknown key",
    ),
    "missing field": (lambda d: d["network"].pop("rtt_ms"), "network.rtt_ms: is required"),
    "wrong type": (
        lambda d: d["network"]["uplink_kbps"].update(value="fast"),
        "network.uplink_kbps.value: must be a number",
    ),
    "negative": (lambda d: d["compute"]["pointwise_macs_per_s"].update(value=-1), "must be > 0"),
    "no source": (lambda d: d["energy"]["nj_per_mac"].update(source=""), "energy.nj_per_mac.source"),
    "shared mismatch": (lambda d: d["memory"]["activation_bytes"].update(value=1), "shared: true"),
    "fractional threads": (lambda d: d["compute"]["threads"].update(value=2.5), "compute.threads"),
}


@pytest.mark.parametrize("case", sorted(BAD_PROFILES))
def test_malformed_profiles_name_file_field_and_rule(tmp_path: Path, case: str) -> None:
    edit, needle = BAD_PROFILES[case]
    path = _write_profile(tmp_path, edit)
    with pytest.raises(UserError) as info:
        load_device_profile(path)
    assert str(path) in str(info.value) and needle in str(info.value)


def test_profile_yaml_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(UserError, match="top level must be a mapping"):
        load_device_profile(path)
    path.write_text("name: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML at line"):
        load_device_profile(path)


def test_fit_recovers_known_throughputs() -> None:
    """Block times made from known throughputs are explained back by the fit."""
    truth = {
        "conv_macs_per_s": 2e9,
        "depthwise_macs_per_s": 5e8,
        "pointwise_macs_per_s": 4e9,
        "elementwise_ops_per_s": 1e9,
        "layer_overhead_ms": 0.03,
    }
    samples = []
    for alpha, size in ((1.0, 64), (0.35, 96)):
        for block in model_costs(alpha, 10, size).blocks:
            by = block.macs_by_class()
            ms = (
                by["conv"] / truth["conv_macs_per_s"]
                + by["depthwise"] / truth["depthwise_macs_per_s"]
                + by["pointwise"] / truth["pointwise_macs_per_s"]
                + block.elementwise_ops / truth["elementwise_ops_per_s"]
            ) * 1e3 + len(block.layers) * 0.03
            samples.append((block, ms))
    fit = fit_compute(samples)
    for key, value in truth.items():
        assert fit.values[key] == pytest.approx(value, rel=1e-3), key
    assert fit.residual_ms < 1e-6


@pytest.mark.parametrize("runtime", ["onnxruntime", "torch"])
def test_measure_blocks_times_every_stage(runtime: str) -> None:
    from optimizer.models import build_mobilenetv2

    timings = measure_blocks(build_mobilenetv2(0.35, 10), 32, threads=1, warmup=1, repeats=3, runtime=runtime)
    assert len(timings) == 20 and all(0 < t.p25_ms <= t.median_ms <= t.p75_ms for t in timings)


def test_nnls_matches_scipy_on_random_problems() -> None:
    """The numpy NNLS (no SciPy at run time) reaches SciPy's residual, with every coefficient >= 0."""
    from scipy.optimize import nnls as scipy_nnls

    from optimizer.profiler._nnls import nnls

    rng = np.random.default_rng(0)
    for trial in range(300):
        m, n = int(rng.integers(1, 30)), int(rng.integers(1, 7))
        a = rng.normal(size=(m, n)) * rng.random(n) * 10
        if trial % 3 == 0:
            a = np.abs(a)
        if trial % 5 == 0:
            a[:, 0] = a[:, -1]  # rank deficient
        b = rng.normal(size=m) * 5
        x, residual = nnls(a, b)
        _, expected_residual = scipy_nnls(a, b)
        assert (x >= 0).all()
        assert residual == pytest.approx(np.linalg.norm(a @ x - b))
        assert residual <= expected_residual + 1e-9
