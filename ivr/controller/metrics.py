"""Prometheus metrics of the IVR controller (exposed by the API's /metrics when in the same process,
and by `hotline ivr --metrics-port`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_BUCKETS = (0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0)

TURN_LATENCY = Histogram(
    "hotline_ivr_turn_latency_seconds",
    "IVR turn latency by stage (turn = caller's end of speech -> first bot audio packet sent)",
    ["stage"], buckets=_BUCKETS,
)
CALLS = Counter("hotline_ivr_calls_total", "calls finished by the IVR controller", ["outcome"])
ACTIVE = Gauge("hotline_ivr_active_calls", "calls the controller is handling now")
BARGE_INS = Counter("hotline_ivr_barge_ins_total", "times a caller spoke over the bot")
TRANSITIONS = Counter("hotline_ivr_state_transitions_total", "call state transitions", ["state"])


def observe_turn(latency_ms: dict[str, int | None]) -> None:
    for stage, ms in latency_ms.items():
        if ms is not None:
            TURN_LATENCY.labels(stage).observe(ms / 1000)
