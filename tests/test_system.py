"""The system model: named metrics, pricing of countable work, packets, constraints, selection on
val, the infeasibility message, the bandwidth sweep, and the shaped link used to check them."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import numpy as np
import optuna
import pytest

from optimizer.codecs import FeatureCodec, ImageCodec, Work
from optimizer.config import Quantity, load_device_profile, load_network_profile
from optimizer.deploy._client import RemoteServer
from optimizer.deploy._link import ShapedLink
from optimizer.errors import UserError
from optimizer.search import Limits, infeasibility, pick_best, trial_metrics
from optimizer.system import (
    METRICS,
    SweepCandidate,
    bandwidth_sweep,
    check_objectives,
    device_work_ms,
    dominates,
    http_request_bytes,
    link_bytes,
    path_costs,
)

PROFILES = Path(__file__).resolve().parents[1] / "profiles"
PI4 = load_device_profile(PROFILES / "pi4.yaml")


def _q(value: float) -> Quantity:
    return Quantity(value, "test")


def test_dominance_follows_each_metrics_direction() -> None:
    a = {"accuracy": 0.9, "payload_bytes": 100.0, "e2e_ms": 10.0}
    b = {"accuracy": 0.8, "payload_bytes": 100.0, "e2e_ms": 12.0}
    assert dominates(a, b, ["accuracy", "payload_bytes", "e2e_ms"])
    assert not dominates(b, a, ["accuracy", "payload_bytes", "e2e_ms"])
    assert not dominates(a, a, ["accuracy", "e2e_ms"])  # equal is not better
    assert dominates(b, a, ["payload_bytes"]) is False and METRICS["accuracy"].direction == "maximize"


@pytest.mark.parametrize("names", [["accuracy"], ["accuracy", "latency"], ["accuracy"] * 2, list(METRICS)[:5]])
def test_objectives_must_be_two_to_four_known_names(names: list[str]) -> None:
    with pytest.raises(UserError):
        check_objectives(names)


def test_pca_work_is_counted_and_priced_by_the_profile() -> None:
    codec = FeatureCodec({"kind": "pca", "geometry": "channel", "components": 4, "bits": 4, "coder": "ans"}, (16, 3, 5))
    work = codec.device_work((16, 3, 5))
    assert work.macs == {"pointwise": 15 * 4 * 16} and work.layers == 1 and work.units == {"ans": 15 * 4}
    assert work.columns == {"ans": 4}
    c, k = PI4.compute, PI4.coding
    expected = 15 * 4 * 16 / c.pointwise_macs_per_s.value * 1e3 + c.layer_overhead_ms.value
    expected += work.elementwise_ops / c.elementwise_ops_per_s.value * 1e3
    expected += k.call_ms.value + k.ans_call_ms.value + 4 * k.ans_column_ms.value + 60 / k.ans_symbols_per_s.value * 1e3
    assert device_work_ms(work, c, k) == pytest.approx(expected)


def test_image_codecs_cost_the_device_their_calibrated_encoding() -> None:
    work = ImageCodec({"kind": "image", "format": "webp", "quality": 50}).device_work((28, 28))
    ms = device_work_ms(work, PI4.compute, PI4.coding)
    k = PI4.coding
    assert ms == pytest.approx(k.call_ms.value + k.webp_call_ms.value + 784 / k.webp_pixels_per_s.value * 1e3)
    assert ms > 0


def test_packets_at_the_mss_add_their_headers() -> None:
    lora = load_network_profile(PROFILES / "networks" / "lora.yaml")
    request = http_request_bytes(500)
    assert request > 500 + 150  # the request line and headers travel with every payload
    link = link_bytes(500, lora)
    packets = -(-request // 222)
    assert link.up == request + packets * 13


def test_path_costs_add_up_to_e2e_and_energy() -> None:
    device = PI4.with_network(load_network_profile(PROFILES / "networks" / "lte.yaml"))
    work = Work({"pointwise": 1_000_000}, 1, 1000, {"ans": 100})
    costs = path_costs(device, 2.0, 5_000_000, 1.5, 40.0, work, Work(units={"ans": 100}))
    m = costs.metrics()
    assert m["e2e_ms"] == pytest.approx(m["device_ms"] + m["transfer_ms"] + m["server_ms"])
    net = device.network
    assert m["transfer_ms"] == pytest.approx(
        net.rtt_ms.value
        + costs.wire_bytes * 8 / net.uplink_kbps.value
        + costs.answer_bytes * 8 / net.downlink_kbps.value
    )
    assert m["device_macs"] == 6_000_000
    radio = (costs.wire_bytes * net.nj_per_byte_sent.value + costs.answer_bytes * net.nj_per_byte_received.value) * 1e-6
    assert m["energy_mj"] == pytest.approx(6_000_000 * device.energy.nj_per_mac.value * 1e-6 + radio)
    assert m["server_ms"] > 1.5 + device.server.request_ms.value  # decoding costs the server too


def test_limits_describe_deadline_and_stream_constraints() -> None:
    limits = Limits(5000, max_latency_ms=500, fps=5)
    assert limits.deadline_ms == 200 and set(limits.active()) >= {"e2e_over_deadline", "device_over_frame"}
    metrics = {"payload_bytes": 100.0, "e2e_ms": 250.0, "device_ms": 50.0, "energy_mj": 1.0, "accuracy": 0.9}
    v = limits.violations(metrics, True, uplink_ms=210.0)
    assert v["e2e_over_deadline"] == 50 and v["device_over_frame"] == -150 and v["link_over_frame"] == 10
    assert v["energy_over_cap"] == 0 and v["payload_over_budget"] == -4900


def _trial(number: int, val: float, test_marker: float, e2e: float, feasible: bool = True) -> optuna.trial.FrozenTrial:
    metrics = {"accuracy": val, "payload_bytes": 50.0, "device_ms": 1.0, "e2e_ms": e2e}
    limits = Limits(5000, max_latency_ms=100)
    violations = limits.violations({**metrics, "energy_mj": 0.0}, True, 1.0)
    trial = optuna.trial.create_trial(
        params={"model": "mobilenetv2:alpha=1.0", "input_size": 32, "k": number},
        distributions={
            "model": optuna.distributions.CategoricalDistribution(["mobilenetv2:alpha=1.0"]),
            "input_size": optuna.distributions.CategoricalDistribution([32]),
            "k": optuna.distributions.IntDistribution(0, 35),
        },
        values=[val, 50.0, 1.0],
        user_attrs={
            "metrics": metrics,
            "codec_params": {"kind": "float16"},
            "feasible": feasible and e2e <= 100,
            "constraint_names": list(violations),
            "constraints": list(violations.values()),
            "test_marker": test_marker,
        },
    )
    trial.number = number  # create_trial numbers every trial 0
    return trial


def test_best_follows_val_not_test() -> None:
    # val ranks A over B, the test split the other way round: best must be A
    a, b = _trial(1, 0.90, 0.80, 50.0), _trial(2, 0.85, 0.95, 40.0)
    assert pick_best([a, b]).number == 1
    tie = _trial(3, 0.90, 0.99, 30.0)  # same val accuracy, lower e2e_ms wins the tie
    assert pick_best([a, b, tie]).number == 3


def test_nothing_feasible_names_the_binding_constraint() -> None:
    trials = [_trial(1, 0.9, 0.9, 180.0), _trial(2, 0.8, 0.8, 130.0)]
    assert pick_best(trials) is None
    message = infeasibility(trials, Limits(5000, max_latency_ms=100))
    assert "e2e_ms <= 100 ms: no trial meets it (nearest 130 ms, trial 2)" in message


def test_legacy_trials_keep_their_three_metrics() -> None:
    trial = optuna.trial.create_trial(values=[0.9, 120.0, 3.5], user_attrs={"device_macs": 7, "energy_mj": 0.1})
    assert trial_metrics(trial) == {
        "accuracy": 0.9,
        "payload_bytes": 120.0,
        "device_ms": 3.5,
        "device_macs": 7.0,
        "energy_mj": 0.1,
    }


def _costs(wire_bytes: float, device_ms: float = 5.0) -> dict[str, float]:
    return {
        "head_ms": device_ms,
        "coding_ms": 0.0,
        "wire_bytes": wire_bytes,
        "answer_bytes": 200.0,
        "rtt_ms": 20.0,
        "uplink_ms": 0.0,
        "downlink_ms": 1.0,
        "request_ms": 1.0,
        "decode_ms": 0.0,
        "tail_ms": 2.0,
        "compute_energy_mj": 1.0,
        "radio_energy_mj": 0.5,
    }


def test_bandwidth_sweep_switches_where_the_bytes_stop_fitting() -> None:
    accurate = SweepCandidate(1, 0.92, _costs(4000.0), True)  # big payload, better accuracy
    small = SweepCandidate(2, 0.88, _costs(300.0), True)
    rows = bandwidth_sweep([accurate, small], deadline_ms=100.0, frame_ms=None, rates_kbps=[10, 100, 1000, 10000])
    # 4000 B needs 3200 ms at 10 kbps and 320 ms at 100 kbps: over the 100 ms deadline; 32 ms at 1 Mbps
    assert [r["trial"] for r in rows] == [None, 2, 1, 1]
    assert [r["changed"] for r in rows] == [False, True, True, False]
    assert rows[2]["e2e_ms"] == pytest.approx(5 + 20 + 32 + 1 + 1 + 2)


def _fixed_answer_server(received: list[int]) -> tuple[socket.socket, threading.Thread]:
    """A loopback HTTP/1.1 server that counts the request bytes and answers with a tiny JSON body."""
    listener = socket.create_server(("127.0.0.1", 0))
    body = b'{"class_index": 1, "label": "x", "score": null, "server_ms": 0.1}'
    answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body) + body

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            for _ in range(3):  # three requests on one kept-alive connection, then stop
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, rest = data.split(b"\r\n\r\n", 1)
                length = int(
                    next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(b":")[1]
                )
                while len(rest) < length:
                    rest += conn.recv(65536)
                received.append(len(head) + 4 + len(rest))
                conn.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, thread


@pytest.mark.parametrize("token_chars", [0, 43], ids=["no token", "bearer token"])
def test_the_model_counts_the_request_bytes_the_device_half_sends(token_chars: int) -> None:
    received: list[int] = []
    listener, thread = _fixed_answer_server(received)
    port = listener.getsockname()[1]
    token = "x" * token_chars or None
    client = RemoteServer(f"http://127.0.0.1:{port}", "f" * 64, timeout_s=10, token=token)
    try:
        for size in (3, 40, 1500):
            client.send(bytes(size))
    finally:
        client.close()
        thread.join(timeout=10)
        listener.close()
    host = f"127.0.0.1:{port}"
    assert received == [http_request_bytes(n, host=host, token_chars=token_chars) for n in (3, 40, 1500)]


def test_shaped_link_counts_and_cannot_beat_its_rate() -> None:
    received: list[int] = []
    listener, thread = _fixed_answer_server(received)
    port = listener.getsockname()[1]
    with ShapedLink(port, up_kbps=400, down_kbps=400, rtt_ms=20) as link:
        client = RemoteServer(link.url, "f" * 64, timeout_s=20)
        start = time.perf_counter()
        for _ in range(3):
            client.send(bytes(5000))
        elapsed = time.perf_counter() - start
        client.close()
        thread.join(timeout=20)
    listener.close()
    assert link.counters.up == sum(received) and link.counters.connections == 1
    assert link.counters.down > 3 * 60
    # each request needs at least its serialization at 400 kbps plus the added 20 ms round trip
    assert elapsed >= sum(received) * 8 / 400e3 + 3 * 0.020


def test_unknown_network_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist; pass one of profiles/networks"):
        load_network_profile(tmp_path / "nope.yaml")
    assert np.isfinite(PI4.coding.rate("ans"))


def test_coding_fit_recovers_known_costs() -> None:
    from optimizer.profiler import fit_coding
    from optimizer.profiler._coding import Sample

    call, per_symbol, per_column, intercept = 0.004, 1e-5, 0.002, 0.01
    samples = [Sample("call", 1, 0, call)]
    samples += [
        Sample("ans", n, w, call + intercept + w * per_column + n * per_symbol)
        for n in (64, 256, 1024, 4096)
        for w in (4, 16)
    ]
    samples += [Sample("png", px, 0, call + 0.05 + px / 2e7 * 1e3) for px in (256, 784, 2304, 9216)]
    fit = fit_coding(samples)
    assert fit.values["call_ms"] == pytest.approx(call)
    assert fit.values["ans_symbols_per_s"] == pytest.approx(1e3 / per_symbol, rel=1e-6)
    assert fit.values["ans_column_ms"] == pytest.approx(per_column, rel=1e-6)
    assert fit.values["ans_call_ms"] == pytest.approx(intercept, rel=1e-6)
    assert fit.values["png_pixels_per_s"] == pytest.approx(2e7, rel=1e-6)
    assert fit.rms_relative_error < 1e-9


def test_the_stream_carries_a_few_bytes_where_http_carries_hundreds() -> None:
    wifi = load_network_profile(PROFILES / "networks" / "wifi.yaml")
    http, stream = link_bytes(30, wifi, "http"), link_bytes(30, wifi, "stream")
    overhead = wifi.per_packet_overhead_bytes.value
    assert stream.up == 30 + 6 + overhead  # 2-byte header + 4-byte mask, one packet
    assert stream.down == 8 + overhead  # 2-byte header + the 6-byte answer
    assert http.up - stream.up > 100 and http.down - stream.down > 150
    with pytest.raises(ValueError, match="transport must be one of http, stream"):
        link_bytes(30, wifi, "carrier-pigeon")


@pytest.mark.parametrize("path", sorted(PROFILES.glob("*.yaml")), ids=lambda p: p.stem)
def test_a_profile_stored_in_pareto_json_reads_back(path: Path) -> None:
    from optimizer.config import parse_device_profile

    profile = load_device_profile(path)
    for network in (profile.network, load_network_profile(PROFILES / "networks" / "lora.yaml")):
        doc = profile.with_network(network).to_json()
        doc.pop("path")
        assert parse_device_profile(doc, path) == profile.with_network(network)
