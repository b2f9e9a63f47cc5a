"""The system model: one configuration's named metrics over device, coding, network and server.

device_ms   = head compute + the codec's device-side work (projection, quantization, entropy
              coding, image encoding, a learned encoder), each priced by the device profile
wire_bytes  = payload + the transport's request bytes + per-packet headers at the link's MSS
transfer_ms = RTT + wire_bytes x 8 / uplink + answer bytes x 8 / downlink
server_ms   = request handling + decode + tail on the profile's server
e2e_ms      = device_ms + transfer_ms + server_ms
energy_mj   = device MACs x nJ/MAC + radio energy of the bytes sent and received
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from optimizer.codecs import Work
from optimizer.config import DeviceProfile, Network
from optimizer.system._price import device_work_ms, server_work_ms
from optimizer.system._transport import link_bytes

__all__ = ["PathCosts", "path_costs", "transfer_ms"]


@dataclass(frozen=True)
class PathCosts:
    """Every term of the model for one configuration; ``metrics()`` names them."""

    head_ms: float
    coding_ms: float  # device-side codec work
    device_macs: int
    wire_bytes: float  # uplink bytes on the air
    answer_bytes: float  # downlink bytes on the air
    rtt_ms: float
    uplink_ms: float
    downlink_ms: float
    request_ms: float  # server: fixed per request
    decode_ms: float  # server: the codec's server-side work
    tail_ms: float
    compute_energy_mj: float
    radio_energy_mj: float

    @property
    def device_ms(self) -> float:
        return self.head_ms + self.coding_ms

    @property
    def transfer_ms(self) -> float:
        return self.rtt_ms + self.uplink_ms + self.downlink_ms

    @property
    def server_ms(self) -> float:
        return self.request_ms + self.decode_ms + self.tail_ms

    def metrics(self) -> dict[str, float]:
        """The system metrics by name (accuracy and payload_bytes come from the evaluation)."""
        return {
            "device_ms": self.device_ms,
            "wire_bytes": self.wire_bytes,
            "transfer_ms": self.transfer_ms,
            "server_ms": self.server_ms,
            "e2e_ms": self.device_ms + self.transfer_ms + self.server_ms,
            "energy_mj": self.compute_energy_mj + self.radio_energy_mj,
            "device_macs": float(self.device_macs),
        }

    def parts(self) -> dict[str, Any]:
        """The breakdown the report stacks and the bandwidth sweep re-prices."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def transfer_ms(wire_bytes: float, answer_bytes: float, network: Network) -> tuple[float, float]:
    """(uplink ms, downlink ms) of the bytes on the air at the link's rates."""
    return wire_bytes * 8 / network.uplink_kbps.value, answer_bytes * 8 / network.downlink_kbps.value


def path_costs(
    profile: DeviceProfile,
    head_ms: float,
    head_macs: int,
    tail_ms: float,
    payload_bytes: float,
    device_work: Work,
    server_work: Work,
    transport: str = "http",
) -> PathCosts:
    """Price one configuration on ``profile`` (its network section is the link) over ``transport``."""
    net = profile.network
    link = link_bytes(payload_bytes, net, transport)
    up_ms, down_ms = transfer_ms(link.up, link.down, net)
    macs = head_macs + device_work.total_macs
    return PathCosts(
        head_ms=head_ms,
        coding_ms=device_work_ms(device_work, profile.compute, profile.coding),
        device_macs=int(macs),
        wire_bytes=link.up,
        answer_bytes=link.down,
        rtt_ms=net.rtt_ms.value,
        uplink_ms=up_ms,
        downlink_ms=down_ms,
        request_ms=profile.server.request_ms.value,
        decode_ms=server_work_ms(server_work, profile.server),
        tail_ms=tail_ms,
        compute_energy_mj=macs * profile.energy.nj_per_mac.value * 1e-6,
        radio_energy_mj=(link.up * net.nj_per_byte_sent.value + link.down * net.nj_per_byte_received.value) * 1e-6,
    )
