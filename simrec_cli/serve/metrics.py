"""Counters, gauges and histograms written in the Prometheus text exposition format (version 0.0.4).

Small and thread-safe: the event loop, the decoding threads and the batching thread all update them. Written by
hand rather than with prometheus_client so that each server (and each test's server) has its own registry.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)

Labels = tuple[tuple[str, str], ...]


def _labels(labels: dict[str, object]) -> Labels:
    return tuple(sorted((key, str(value)) for key, value in labels.items()))


def _format_labels(labels: Labels, extra: tuple[str, str] | None = None) -> str:
    pairs = [*labels, *([extra] if extra else [])]
    if not pairs:
        return ""
    escaped = (value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") for _, value in pairs)
    return "{" + ",".join(f'{key}="{value}"' for (key, _), value in zip(pairs, escaped, strict=True)) + "}"


def _format_value(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class _Metric:
    kind = ""

    def __init__(self, name: str, help_text: str) -> None:
        self.name = name
        self.help_text = help_text
        self._lock = threading.Lock()

    def render(self) -> list[str]:
        return [f"# HELP {self.name} {self.help_text}", f"# TYPE {self.name} {self.kind}", *self._samples()]

    def _samples(self) -> list[str]:
        raise NotImplementedError


class Counter(_Metric):
    """A value that only goes up, one per label combination."""

    kind = "counter"

    def __init__(self, name: str, help_text: str) -> None:
        super().__init__(name, help_text)
        self._values: dict[Labels, float] = {}

    def inc(self, amount: float = 1.0, **labels: object) -> None:
        key = _labels(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: object) -> float:
        with self._lock:
            return self._values.get(_labels(labels), 0.0)

    def _samples(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        return [f"{self.name}{_format_labels(key)} {_format_value(value)}" for key, value in items]


class Gauge(_Metric):
    """A value that goes up and down (queue length, requests in progress)."""

    kind = "gauge"

    def __init__(self, name: str, help_text: str) -> None:
        super().__init__(name, help_text)
        self._value = 0.0

    def add(self, amount: float) -> None:
        with self._lock:
            self._value += amount

    def set(self, value: float) -> None:
        with self._lock:
            self._value = value

    @property
    def value(self) -> float:
        with self._lock:
            return self._value

    def _samples(self) -> list[str]:
        return [f"{self.name} {_format_value(self.value)}"]


class Histogram(_Metric):
    """Observations counted into cumulative buckets, with their sum and count."""

    kind = "histogram"

    def __init__(self, name: str, help_text: str, buckets: Sequence[float]) -> None:
        super().__init__(name, help_text)
        self.buckets = tuple(sorted(buckets))
        self._counts = [0] * (len(self.buckets) + 1)  # the last one is +Inf
        self._sum = 0.0

    def observe(self, value: float) -> None:
        slot = next((i for i, bound in enumerate(self.buckets) if value <= bound), len(self.buckets))
        with self._lock:
            self._counts[slot] += 1
            self._sum += value

    @property
    def count(self) -> int:
        with self._lock:
            return sum(self._counts)

    @property
    def total(self) -> float:
        """The sum of all observations."""
        with self._lock:
            return self._sum

    def _samples(self) -> list[str]:
        with self._lock:
            counts, total = list(self._counts), self._sum
        lines, cumulative = [], 0
        for bound, count in zip((*self.buckets, math.inf), counts, strict=True):
            cumulative += count
            lines.append(f"{self.name}_bucket{_format_labels((), ('le', _format_value(bound)))} {cumulative}")
        lines += [f"{self.name}_sum {_format_value(total)}", f"{self.name}_count {cumulative}"]
        return lines


class ServerMetrics:
    """The figures `GET /metrics` exposes."""

    def __init__(self) -> None:
        self.requests = Counter("simrec_requests_total", "HTTP requests answered, by path and status code.")
        self.errors = Counter("simrec_request_errors_total", "Requests refused or failed, by error code.")
        self.expressions = Counter("simrec_expressions_total", "Expressions answered.")
        self.in_progress = Gauge("simrec_requests_in_progress", "Prediction requests admitted and not yet answered.")
        self.queue_length = Gauge("simrec_queue_expressions", "Expressions waiting for a forward pass.")
        self.latency = Histogram(
            "simrec_predict_latency_seconds",
            "Time from receiving a prediction request to answering it.",
            LATENCY_BUCKETS,
        )
        self.queue_wait = Histogram(
            "simrec_queue_wait_seconds", "Time a request waited before its first forward pass.", LATENCY_BUCKETS
        )
        self.forward = Histogram("simrec_forward_seconds", "Duration of one batched forward pass.", LATENCY_BUCKETS)
        self.batch_expressions = Histogram(
            "simrec_batch_expressions", "Expressions answered by one forward pass.", BATCH_BUCKETS
        )
        self.batch_images = Histogram(
            "simrec_batch_images", "Distinct images encoded by one forward pass.", BATCH_BUCKETS
        )

    def render(self) -> str:
        metrics: list[_Metric] = [
            self.requests,
            self.errors,
            self.expressions,
            self.in_progress,
            self.queue_length,
            self.latency,
            self.queue_wait,
            self.forward,
            self.batch_expressions,
            self.batch_images,
        ]
        return "\n".join(line for metric in metrics for line in metric.render()) + "\n"
