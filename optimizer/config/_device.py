"""Device profiles (profiles/*.yaml): compute, memory, network, energy of a device, and the server.

Every number is a *quantity*: ``{value: N, source: "where it comes from, or 'estimate: why'"}``.
The schema is documented in profiles/README.md; this module is its single implementation.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from optimizer.config._schema import Reader, load_yaml_mapping
from optimizer.errors import UserError

__all__ = [
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
class Quantity:
    """A number with the source it was taken from (or ``estimate: ...``)."""

    value: float
    source: str


@dataclass(frozen=True)
class Compute:
    """Effective throughput per operation class, in multiply-accumulates per second.

    conv: dense convolutions with a kernel larger than 1x1; depthwise: one filter per channel;
    pointwise: 1x1 convolutions and fully-connected layers; element-wise: activations, residual
    additions and pooling, in elements per second. Each conv/linear layer also costs
    ``layer_overhead_ms`` (dispatch, memory set-up) whatever its size.
    """

    threads: Quantity
    conv_macs_per_s: Quantity
    depthwise_macs_per_s: Quantity
    pointwise_macs_per_s: Quantity
    elementwise_ops_per_s: Quantity
    layer_overhead_ms: Quantity


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
class Network:
    uplink_kbps: Quantity
    downlink_kbps: Quantity
    rtt_ms: Quantity
    per_message_overhead_bytes: Quantity


@dataclass(frozen=True)
class Energy:
    nj_per_mac: Quantity
    nj_per_byte_sent: Quantity


@dataclass(frozen=True)
class Server:
    """The machine that runs the tail."""

    name: str
    macs_per_s: Quantity
    layer_overhead_ms: Quantity


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    description: str
    path: str
    compute: Compute
    memory: Memory
    network: Network
    energy: Energy
    server: Server

    def to_json(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


# Fields whose value may be 0 (everything else must be strictly positive).
_MAY_BE_ZERO = {"layer_overhead_ms", "rtt_ms", "per_message_overhead_bytes", "nj_per_mac", "nj_per_byte_sent"}


def _quantity(reader: Reader, key: str) -> Quantity:
    q = reader.child(key)
    q.check_keys({"value", "source"})
    return Quantity(q.number("value", 0.0, strict=key not in _MAY_BE_ZERO), q.text("source"))


def _section(
    reader: Reader, key: str, cls: type, texts: frozenset[str] = frozenset(), flags: frozenset[str] = frozenset()
) -> Any:
    sec = reader.child(key)
    names = {f.name for f in fields(cls)}
    sec.check_keys(names)
    values: dict[str, Any] = {}
    for name in names:
        if name in texts:
            values[name] = sec.text(name)
        elif name in flags:
            values[name] = sec.boolean(name)
        else:
            values[name] = _quantity(sec, name)
    return cls(**values)


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
    reader.check_keys({"name", "description", "compute", "memory", "network", "energy", "server"})
    profile = DeviceProfile(
        name=reader.text("name"),
        description=reader.text("description"),
        path=str(path),
        compute=_section(reader, "compute", Compute),
        memory=_section(
            reader,
            "memory",
            Memory,
            texts=frozenset({"weights_memory", "activation_memory"}),
            flags=frozenset({"shared"}),
        ),
        network=_section(reader, "network", Network),
        energy=_section(reader, "energy", Energy),
        server=_section(reader, "server", Server, texts=frozenset({"name"})),
    )
    _check_consistency(profile, reader)
    return profile


def load_device_profile(path: str | Path) -> DeviceProfile:
    """Read and check a device profile; any problem is a UserError naming file, field and rule."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"device profile {path} does not exist; pass one of profiles/*.yaml")
    return parse_device_profile(load_yaml_mapping(path), path)
