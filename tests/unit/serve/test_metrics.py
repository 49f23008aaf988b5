"""The Prometheus text format the server's /metrics writes."""

from __future__ import annotations

import math

from simrec_cli.serve.metrics import Counter, Gauge, Histogram, ServerMetrics


def test_counter_lines_carry_escaped_labels() -> None:
    counter = Counter("simrec_requests_total", "Requests.")
    counter.inc(path="/predict", status=200)
    counter.inc(2, path="/predict", status=200)
    counter.inc(path='a"b\\c', status=404)
    lines = counter.render()
    assert lines[:2] == ["# HELP simrec_requests_total Requests.", "# TYPE simrec_requests_total counter"]
    assert 'simrec_requests_total{path="/predict",status="200"} 3' in lines
    assert 'simrec_requests_total{path="a\\"b\\\\c",status="404"} 1' in lines
    assert counter.value(path="/predict", status=200) == 3


def test_histogram_buckets_are_cumulative_with_sum_and_count() -> None:
    histogram = Histogram("simrec_batch_expressions", "Batch sizes.", (1, 4, 16))
    for value in (1, 3, 4, 5, 40):
        histogram.observe(value)
    lines = histogram.render()
    assert 'simrec_batch_expressions_bucket{le="1"} 1' in lines
    assert 'simrec_batch_expressions_bucket{le="4"} 3' in lines
    assert 'simrec_batch_expressions_bucket{le="16"} 4' in lines
    assert 'simrec_batch_expressions_bucket{le="+Inf"} 5' in lines
    assert "simrec_batch_expressions_sum 53" in lines
    assert "simrec_batch_expressions_count 5" in lines
    assert histogram.count == 5 and math.isclose(histogram.total, 53)


def test_gauge_and_whole_registry_parse_as_exposition_lines() -> None:
    gauge = Gauge("simrec_queue_expressions", "Queue.")
    gauge.add(3)
    gauge.add(-1)
    assert gauge.render()[-1] == "simrec_queue_expressions 2"
    text = ServerMetrics().render()
    assert text.endswith("\n")
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE"):
            _, _, name, kind = line.split()
            assert kind in ("counter", "gauge", "histogram")
            names.add(name)
        elif not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            float(value.replace("+Inf", "inf"))
    assert {"simrec_requests_total", "simrec_predict_latency_seconds", "simrec_batch_expressions"} <= names
