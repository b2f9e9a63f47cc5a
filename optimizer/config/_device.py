"""Device profiles (profiles/*.yaml): compute, memory, link, energy and coding of a device, and the server.

Every number is a *quantity*: ``{value: N, source: "where it comes from, or 'estimate: why'"}``.
The schema is documented in profiles/README.md; this module is its single implementation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optimizer.config._network import Network, parse_network_section
from optimizer.config._quantity import Quantity, section
from optimizer.config._schema import Reader, load_yaml_mapping
from optimizer.errors import UserError

__all__ = [
    "Coding",
    "Compute",
    "DeviceProfile",
    "Energy",
    "Memory",
    "Network",
    "Quantity",
    "Server",
    "load_device_profile",
    "parse_device_profile",
]


@dataclass(frozen=True)
class Compute:
    """The latency model's prices (optimizer/profiler/_latency.py states the model).

    MACs per second per layer class: conv (dense, kernel larger than 1x1), depthwise (one group per
    input channel), grouped (1 < groups < input channels), pointwise (1x1 convolutions and
    fully-connected layers). Element-wise ops per second per class: ``elementwise`` (ReLU, ReLU6,
    additions, concatenation), hardswish (and hardsigmoid), sigmoid (sigmoid, SiLU, GELU, tanh),
    mul (squeeze-excitation scaling and other products), pool (max/average pooling, per window
    element), global_pool (adaptive pooling and means, per input element). ``weight_bytes_per_s``:
    the rate at which a head's weights stream from memory, for the bytes beyond
    ``weight_cache_bytes`` (what a head run again and again keeps in cache; 0: every byte streams).
    ``layer_overhead_ms`` per conv/linear layer; per head run ``run_overhead_ms`` and its input and
    output elements at ``boundary_elements_per_s``.
    """

    threads: Quantity
    conv_macs_per_s: Quantity
    depthwise_macs_per_s: Quantity
    grouped_macs_per_s: Quantity
    pointwise_macs_per_s: Quantity
    elementwise_ops_per_s: Quantity
    hardswish_ops_per_s: Quantity
    sigmoid_ops_per_s: Quantity
    mul_ops_per_s: Quantity
    pool_ops_per_s: Quantity
    global_pool_ops_per_s: Quantity
    weight_bytes_per_s: Quantity
    weight_cache_bytes: Quantity
    boundary_elements_per_s: Quantity
    layer_overhead_ms: Quantity
    run_overhead_ms: Quantity


@dataclass(frozen=True)
class Memory:
    """Where weights and activations live. With ``shared`` true both come from one pool
    (``weights_bytes`` = ``activation_bytes`` = that pool), so a head fits when weights plus peak
    activation fit; otherwise each must fit its own memory (a microcontroller: flash and SRAM)."""

    weights_bytes: Quantity
    weights_memory: str
    activation_bytes: Quantity
    activation_memory: str
    shared: bool
    bytes_per_weight: Quantity  # 4 for float32 inference, 1 for int8
    bytes_per_activation: Quantity
    storage_bytes: Quantity


@dataclass(frozen=True)
class Coding:
    """Costs of the codec steps outside the network's layers (priced by optimizer.system).

    ``call_ms``: the fixed cost of one codec call (its own dispatch, the wire header). Each coding
    unit then costs ``UNIT_call_ms`` once per payload plus its count over ``UNIT_..._per_s``: entropy
    coders (ans, huffman, raw bit packing) in symbols, float16 conversion in values, image codecs
    (jpeg, webp, png) in pixels; ANS also ``ans_column_ms`` per component (one model each).
    ``split-opt calibrate`` measures them on the machine it runs on.
    """

    call_ms: Quantity
    ans_call_ms: Quantity
    ans_column_ms: Quantity
    ans_symbols_per_s: Quantity
    huffman_call_ms: Quantity
    huffman_symbols_per_s: Quantity
    raw_call_ms: Quantity
    raw_symbols_per_s: Quantity
    ctx_call_ms: Quantity
    ctx_symbols_per_s: Quantity
    ctx_pmf_values_per_s: Quantity  # the context coder's probability rows: 2**bits values per symbol
    float16_values_per_s: Quantity
    jpeg_call_ms: Quantity
    jpeg_pixels_per_s: Quantity
    webp_call_ms: Quantity
    webp_pixels_per_s: Quantity
    png_call_ms: Quantity
    png_pixels_per_s: Quantity

    def rate(self, unit: str) -> float:
        """Throughput of one counted unit: a coder (ans, huffman, raw), float16 or an image format."""
        for suffix in ("symbols", "values", "pixels"):
            value = getattr(self, f"{unit}_{suffix}_per_s", None)
            if value is not None:
                return float(value.value)
        raise KeyError(f"no coding throughput for {unit!r}; add {unit}_..._per_s to the profile")

    def call(self, unit: str) -> float:
        """The fixed cost of one payload's worth of ``unit`` (0 where the profile has none)."""
        value = getattr(self, f"{unit}_call_ms", None)
        return float(value.value) if value is not None else 0.0

    def column(self, unit: str) -> float:
        """The cost of one separately modelled column of ``unit`` (0 where the profile has none)."""
        value = getattr(self, f"{unit}_column_ms", None)
        return float(value.value) if value is not None else 0.0


@dataclass(frozen=True)
class Energy:
    nj_per_mac: Quantity


@dataclass(frozen=True)
class Server:
    """The machine that runs the tail: its compute, the fixed cost of one request, its decoders."""

    name: str
    macs_per_s: Quantity
    layer_overhead_ms: Quantity
    request_ms: Quantity
    coding: Coding


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    description: str
    path: str
    compute: Compute
    memory: Memory
    network: Network
    energy: Energy
    coding: Coding
    server: Server

    def to_json(self) -> dict[str, Any]:
        """The profile as data that parse_device_profile reads back (the link's file path aside)."""
        from dataclasses import asdict

        doc = asdict(self)
        doc["network"].pop("path", None)
        if not doc["network"]["description"]:
            doc["network"].pop("description")
        return doc

    def with_network(self, network: Network) -> DeviceProfile:
        """The same device on another link (``--network FILE``)."""
        from dataclasses import replace

        return replace(self, network=network)


def _check_consistency(profile: DeviceProfile, reader: Reader) -> None:
    m = profile.memory
    if m.shared and m.weights_bytes.value != m.activation_bytes.value:
        raise reader.error(
            "with shared: true, weights_bytes and activation_bytes must be the same pool, got "
            f"{m.weights_bytes.value:g} and {m.activation_bytes.value:g}",
            "memory",
        )
    if profile.compute.threads.value != int(profile.compute.threads.value):
        raise reader.error(f"must be a whole number, got {profile.compute.threads.value:g}", "compute.threads")


def parse_device_profile(data: dict[str, Any], path: Path) -> DeviceProfile:
    reader = Reader(data, path)
    reader.check_keys({"name", "description", "compute", "memory", "network", "energy", "coding", "server"})
    profile = DeviceProfile(
        name=reader.text("name"),
        description=reader.text("description"),
        path=str(path),
        compute=section(reader, "compute", Compute),
        memory=section(
            reader,
            "memory",
            Memory,
            texts=frozenset({"weights_memory", "activation_memory"}),
            flags=frozenset({"shared"}),
        ),
        network=parse_network_section(reader.child("network"), f"{reader.text('name')} link"),
        energy=section(reader, "energy", Energy),
        coding=section(reader, "coding", Coding),
        server=section(reader, "server", Server, texts=frozenset({"name"}), nested={"coding": Coding}),
    )
    _check_consistency(profile, reader)
    return profile


def load_device_profile(path: str | Path) -> DeviceProfile:
    """Read and check a device profile; any problem is a UserError naming file, field and rule."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"device profile {path} does not exist; pass one of profiles/*.yaml")
    return parse_device_profile(load_yaml_mapping(path), path)
