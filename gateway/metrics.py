"""Prometheus metrics of the gateway (served at /metrics)."""

from prometheus_client import Counter, Histogram

REQUESTS = Counter("imgsel_requests_total", "HTTP requests by route and status code", ["route", "code"])
LATENCY = Histogram(
    "imgsel_request_seconds",
    "HTTP request latency by route",
    ["route"],
    buckets=(0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6),
)
# Where a request's time went (gateway.timing): waiting on Triton, fetching images, the state store, and the rest, the
# gateway's own work. Fine buckets at the low end: the gateway's share is a few milliseconds.
PHASE_LATENCY = Histogram(
    "imgsel_request_phase_seconds",
    "HTTP request time by route and phase (triton, fetch, database, receive = the request body, gateway = the rest, "
    "of which hashing and decisions = de-duplication and selection; overhead = outside triton and fetch)",
    ["route", "phase"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6),
)
IMAGE_OUTCOMES = Counter("imgsel_images_total", "Per-image verdicts of /v1/select by status", ["status"])
TRITON_UNAVAILABLE = Counter("imgsel_triton_unavailable_total", "Requests answered 503 because Triton was unavailable")
STORE_UNAVAILABLE = Counter("imgsel_store_unavailable_total", "Requests answered 503: state store unavailable")
EXEMPLAR_FEEDS = Counter(
    "imgsel_exemplar_feeds_total",
    "Products whose accepted images were written to the vote's exemplar store after the answer, by outcome "
    "(stored, failed, skipped: too many writes already waiting)",
    ["outcome"],
)
