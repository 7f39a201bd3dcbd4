"""Prometheus metrics of the gateway (served at /metrics)."""

from prometheus_client import Counter, Histogram

REQUESTS = Counter("imgsel_requests_total", "HTTP requests by route and status code", ["route", "code"])
LATENCY = Histogram(
    "imgsel_request_seconds",
    "HTTP request latency by route",
    ["route"],
    buckets=(0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6),
)
IMAGE_OUTCOMES = Counter("imgsel_images_total", "Per-image verdicts of /v1/select by status", ["status"])
TRITON_UNAVAILABLE = Counter("imgsel_triton_unavailable_total", "Requests answered 503 because Triton was unavailable")
STORE_UNAVAILABLE = Counter("imgsel_store_unavailable_total", "Requests answered 503: state store unavailable")
