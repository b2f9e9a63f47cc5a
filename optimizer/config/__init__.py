"""Checked configuration read from YAML: device profiles (and, later, search spaces)."""

from __future__ import annotations

from optimizer.config._device import (
    Compute,
    DeviceProfile,
    Energy,
    Memory,
    Network,
    Quantity,
    Server,
    load_device_profile,
    parse_device_profile,
)
from optimizer.config._schema import Reader, load_yaml_mapping

__all__ = [
    "Compute",
    "DeviceProfile",
    "Energy",
    "Memory",
    "Network",
    "Quantity",
    "Reader",
    "Server",
    "load_device_profile",
    "load_yaml_mapping",
    "parse_device_profile",
]
