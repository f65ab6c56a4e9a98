"""Prometheus metrics of one hub node, in a registry of its own (tests run many hubs).

Per-delivery counts are plain ints bumped on the hot path and exported at scrape time by
a custom collector: a prometheus Counter.inc() per recipient would cost more than the
delivery itself.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class _LiveCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics

    def collect(self) -> Iterator[Metric]:
        out = CounterMetricFamily(
            "os1_frames_out", "Frames queued to clients, by type", labels=["type"]
        )
        for t, n in sorted(self.m.frames_out.items()):
            out.add_metric([t], n)
        yield out
        g = GaugeMetricFamily("os1_connections", "Open WebSocket connections, by role", labels=["role"])
        for role, n in sorted(self.m.connections().items()):
            g.add_metric([role], n)
        yield g
        yield GaugeMetricFamily("os1_rooms_local", "Rooms with local subscribers", value=self.m.rooms())


class CollectiveCounters:
    """The collective of the personas this node runs (``os1 serve``): turns said by kind, and
    turns refused by guard. Handed to the personas as their meter (personas.collective.meter);
    label values come from their fixed sets of kinds and guards."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.turns = Counter("os1_collective_turns", "Collective turns said by this node's personas, by kind",
                             ["kind"], registry=registry)
        self.guards = Counter("os1_collective_guard", "Collective turns refused by a guard, by guard",
                              ["guard"], registry=registry)

    def turn(self, kind: str) -> None:
        self.turns.labels(kind).inc()

    def guard(self, guard: str) -> None:
        self.guards.labels(guard).inc()


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.frames_out: Tally[str] = Tally()
        self.connections: Callable[[], dict[str, int]] = dict
        self.rooms: Callable[[], int] = lambda: 0
        self.frames_in = Counter(
            "os1_frames_in", "Frames received from clients, by type", ["type"], registry=self.registry
        )
        self.errors = Counter("os1_errors", "Error frames sent, by code", ["code"], registry=self.registry)
        self.closes = Counter(
            "os1_closes", "Connections closed by the hub, by close code", ["code"], registry=self.registry
        )
        self.queue_drops = Counter(
            "os1_queue_drops", "Connections dropped for a full send queue", registry=self.registry
        )
        self.fanout = Histogram(
            "os1_fanout_seconds",
            "Time to queue one event to every local recipient",
            buckets=(1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1, 0.5),
            registry=self.registry,
        )
        self.collective = CollectiveCounters(self.registry)
        self.registry.register(_LiveCollector(self))

    def render(self) -> bytes:
        return generate_latest(self.registry)
