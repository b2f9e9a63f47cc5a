"""Network profiles: the link between the device and the server (profiles/networks/*.yaml, or the
``network`` section of a device profile). ``--network FILE`` replaces a device's own link.

Packets carry at most ``mss_bytes`` of application data (TCP's maximum segment size, or a radio
frame's payload) and each adds ``per_packet_overhead_bytes`` of headers (link + IP + TCP, or the
radio's MAC header). Radio energy is charged per byte on the air, headers included.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from optimizer.config._quantity import Quantity, quantity
from optimizer.config._schema import Reader, load_yaml_mapping
from optimizer.errors import UserError

__all__ = ["Network", "load_network_profile", "parse_network_section"]


@dataclass(frozen=True)
class Network:
    name: str
    uplink_kbps: Quantity
    downlink_kbps: Quantity
    rtt_ms: Quantity
    mss_bytes: Quantity
    per_packet_overhead_bytes: Quantity
    nj_per_byte_sent: Quantity
    nj_per_byte_received: Quantity
    description: str = ""
    path: str = field(default="", compare=False)  # where it was read from


_QUANTITIES = tuple(f.name for f in fields(Network) if f.type in (Quantity, "Quantity"))


def parse_network_section(reader: Reader, default_name: str = "device link") -> Network:
    """A ``network`` mapping: the quantities, plus optional ``name`` and ``description``."""
    reader.check_keys(set(_QUANTITIES), optional=frozenset({"name", "description"}))
    values = {key: quantity(reader, key) for key in _QUANTITIES}
    name = reader.text("name") if "name" in reader.data else default_name
    description = reader.text("description") if "description" in reader.data else ""
    network = Network(name=name, description=description, path=str(reader.path), **values)
    if network.mss_bytes.value != int(network.mss_bytes.value):
        raise reader.error(f"must be a whole number of bytes, got {network.mss_bytes.value:g}", "mss_bytes")
    return network


def load_network_profile(path: str | Path) -> Network:
    """Read and check profiles/networks/NAME.yaml; any problem names the file, field and rule."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"network profile {path} does not exist; pass one of profiles/networks/*.yaml")
    reader = Reader(load_yaml_mapping(path), path)
    if "name" not in reader.data:
        raise reader.error("is required but missing", "name")
    return parse_network_section(reader)
