"""Checked configuration read from YAML: device and network profiles, search spaces."""

from __future__ import annotations

from optimizer.config._device import (
    Coding,
    Compute,
    DeviceProfile,
    Energy,
    Memory,
    Quantity,
    Server,
    load_device_profile,
    parse_device_profile,
)
from optimizer.config._network import Network, load_network_profile
from optimizer.config._schema import Reader, load_yaml_mapping
from optimizer.config._space import CUT_SETS, ModelChoice, SearchSpace, load_search_space, parse_search_space

__all__ = [
    "CUT_SETS",
    "Coding",
    "Compute",
    "DeviceProfile",
    "Energy",
    "Memory",
    "ModelChoice",
    "Network",
    "Quantity",
    "Reader",
    "SearchSpace",
    "Server",
    "load_device_profile",
    "load_network_profile",
    "load_search_space",
    "load_yaml_mapping",
    "parse_device_profile",
    "parse_search_space",
]
