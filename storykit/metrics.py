"""Prometheus metric definitions, in a registry made per app.

The process-global registry fails when an app is built twice (tests, several apps
in one process), so every :class:`Metrics` owns its own ``CollectorRegistry``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from storykit.models import Status

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "storykit_http_requests",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_latency = Histogram(
            "storykit_http_request_duration_seconds",
            "HTTP request latency by route template and status.",
            ["route", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.sse_connections = Gauge(
            "storykit_sse_connections", "Open SSE connections.", registry=r
        )
        self.events_published = Counter(
            "storykit_events_published", "Events published, by type.", ["type"], registry=r
        )
        # The seed's name, kept so existing dashboards and alerts keep working.
        self.sse_queue_dropped = Counter(
            "sse_queue_dropped",
            "Events dropped from full per-connection SSE queues.",
            registry=r,
        )
        self.sse_streams_dropped = Counter(
            "storykit_sse_streams_dropped",
            "SSE streams the server closed, by reason"
            " (slow: a send did not finish within SSE_SEND_TIMEOUT).",
            ["reason"],
            registry=r,
        )
        self.sse_streams_dropped.labels(reason="slow")  # shown as 0 before the first drop
        self.rate_limited = Counter(
            "storykit_rate_limited", "Requests refused by the rate limiter.", ["agent"], registry=r
        )
        self.suggestions = Gauge(
            "storykit_suggestions", "Stored suggestions by status.", ["status"], registry=r
        )
        self.policy_decisions = Counter(
            "storykit_policy_decisions", "Policy decisions by outcome.", ["outcome"], registry=r
        )
        self.plugin_errors = Counter(
            "storykit_plugin_errors",
            "Plugin calls that raised or timed out.",
            ["plugin", "hook"],
            registry=r,
        )

        self.artifact_failures = Counter(
            "storykit_artifact_write_failures",
            "Artifact writes given up after their retries, by kind (suggestion, plan).",
            ["kind"],
            registry=r,
        )
        for kind in ("suggestion", "plan"):
            self.artifact_failures.labels(kind=kind)  # shown as 0 before the first failure

    def set_suggestion_counts(self, counts: dict[Status, int]) -> None:
        for status in Status:
            self.suggestions.labels(status=status.value).set(counts.get(status, 0))

    def render(self) -> bytes:
        return generate_latest(self.registry)
