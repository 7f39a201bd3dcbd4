"""Settings from environment variables prefixed IMGSEL_ (documented in the README)."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def parse_bool(raw: str) -> bool:
    word = raw.strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {raw!r}")


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    triton_grpc_url: str = "127.0.0.1:8001"
    triton_http_port: int = 8000
    triton_grpc_port: int = 8001
    triton_metrics_port: int = 8002
    triton_timeout_s: float = 30.0  # one analyze call; past it the request gets 503
    triton_home: str = str(PROJECT_ROOT / ".cache" / "tritonserver")  # unpacked nvidia-pytriton wheel
    model_repository: str = str(PROJECT_ROOT / "model_repository")
    startup_timeout_s: float = 180.0
    retry_after_s: int = 5
    fetch_timeout_s: float = 10.0
    fetch_max_bytes: int = 20 * 1024 * 1024  # per image, URL or base64
    fetch_concurrency: int = 16
    fetch_allow_private: bool = False  # refuse URLs resolving to private/loopback addresses (SSRF guard)
    max_images_per_request: int = 200
    categories_file: str = ""  # empty: contract/categories.toml
    data_dir: str = str(PROJECT_ROOT / ".imgsel-data")  # persistent state: placeholder library, vote exemplars (SQLite)
    placeholder_max_distance: int = 16  # pHash bits: 0 false positives on 481 dev photos (BENCHMARKS.md)
    # The unseen-placeholder vote (gateway.decisions.VoteRule; chosen on dev data, BENCHMARKS.md).
    placeholder_vote_exemplars: int = 11  # K: exemplars (recent accepted products of the category) per vote
    placeholder_vote_min_votes: int = 5  # "unlike" votes that call a placeholder
    placeholder_vote_similarity: float = 0.16  # an exemplar votes "unlike" below this cosine similarity
    placeholder_vote_head_min: float = 0.02  # ... and rejects only with a learned placeholder score >= this
    placeholder_vote_similarity_alone: float = 0.13  # threshold when no placeholder score ran (vote alone)
    exemplar_capacity: int = 256  # exemplars kept per category (ring, most recent)
    exemplar_per_product: int = 2  # accepted images one product contributes
    exemplar_max_placeholder_score: float = 0.05  # accepted images feed the store only below this placeholder score
    # Visual search (gateway.stores.search_index): exact search per partition up to this size, HNSW above it.
    search_exact_max: int = 20_000
    search_ef_search: int = 64  # HNSW candidate list per query (recall vs latency, BENCHMARKS.md)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            raw = environ.get(f"IMGSEL_{f.name.upper()}")
            if raw is None:
                continue
            kind = type(f.default)
            try:
                values[f.name] = parse_bool(raw) if kind is bool else kind(raw)
            except ValueError as error:
                raise ValueError(f"IMGSEL_{f.name.upper()}={raw!r}: expected {kind.__name__}") from error
        return cls(**values)
