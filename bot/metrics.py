"""Prometheus metrics for one application instance.

Each app owns its own `CollectorRegistry` (never prometheus_client's global one), so several
apps in one process, as in the tests, do not clash. Other modules add their own metrics through
`app[METRICS].counter(...)` / `.histogram(...)` / `.gauge(...)`; asking twice for the same name
returns the same metric, so a module may register at startup without tracking whether it already did.
This module only counts; it must not decide anything or do I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics import MetricWrapperBase

_M = TypeVar("_M", bound=MetricWrapperBase)

# Request latencies of a chat bot's HTTP edge: callbacks must answer well under a second.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# The route label for requests that matched no route, so random URLs cannot explode cardinality.
UNMATCHED_ROUTE = "<unmatched>"


class Metrics:
    """The per-app registry plus the HTTP metrics the middleware records."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, namespace: str = "oabot") -> None:
        self.namespace = namespace
        self.registry = CollectorRegistry(auto_describe=True)
        self._metrics: dict[str, MetricWrapperBase] = {}
        self.http_requests = self.counter(
            "http_requests", "HTTP requests handled, by route and status.", ("method", "route", "status")
        )
        self.http_latency = self.histogram(
            "http_request_duration_seconds",
            "Time to handle an HTTP request, by route.",
            ("method", "route"),
            buckets=LATENCY_BUCKETS,
        )

    def counter(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Counter:
        """A counter named `<namespace>_<name>_total` (prometheus_client adds `_total`)."""
        return self._get_or_create(Counter, name, documentation, labels)

    def gauge(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Gauge:
        return self._get_or_create(Gauge, name, documentation, labels)

    def histogram(
        self,
        name: str,
        documentation: str,
        labels: Sequence[str] = (),
        *,
        buckets: Sequence[float] = LATENCY_BUCKETS,
    ) -> Histogram:
        return self._get_or_create(Histogram, name, documentation, labels, buckets=tuple(buckets))

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http_requests.labels(method=method, route=route, status=str(status)).inc()
        self.http_latency.labels(method=method, route=route).observe(seconds)

    def render(self) -> bytes:
        """Everything in the registry, in the Prometheus text exposition format."""
        return generate_latest(self.registry)

    def _get_or_create(
        self,
        kind: type[_M],
        name: str,
        documentation: str,
        labels: Sequence[str],
        **kwargs: object,
    ) -> _M:
        existing = self._metrics.get(name)
        if existing is not None:
            if not isinstance(existing, kind):
                raise ValueError(f"metric {name!r} already exists as a {type(existing).__name__}")
            return existing
        metric = kind(
            name,
            documentation,
            labelnames=tuple(labels),
            namespace=self.namespace,
            registry=self.registry,
            **kwargs,  # type: ignore[arg-type]
        )
        self._metrics[name] = metric
        return metric
