"""Settings from environment variables prefixed IMGSEL_ (documented in the README): `Settings()` reads the process
environment, `Settings.from_env(environ)` a given mapping (the launcher, tests)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings.sources import EnvSettingsSource, InitSettingsSource
from pydantic_settings.sources.utils import parse_env_vars

from gateway.decisions.placeholders import LibraryRule, VoteRule

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENV_PREFIX = "IMGSEL_"


def parse_bool(raw: str) -> bool:
    word = raw.strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {raw!r}")


class SettingsError(ValueError):
    """A setting with a value of the wrong type; the message names the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True)

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
    max_images_per_request: int = 200  # more -> 413 naming the limit
    max_body_bytes: int = 32 * 1024 * 1024  # request body (Content-Length or chunked) -> 413 before parsing
    max_pixels: int = 50_000_000  # width x height read from the file header, before decoding -> too_large
    max_side: int = 16_384  # longest side, read from the header -> too_large
    # Access (DESIGN.md "Access and limits"): `scope:key` entries; no keys configured -> open, loopback only.
    api_keys: SecretStr = SecretStr("")  # comma-separated, e.g. "curate:k1,admin:k2"; SecretStr: never in a repr
    api_keys_file: str = ""  # same entries, one per line (a mounted Kubernetes Secret)
    allow_unauthenticated: bool = False  # allow binding a non-loopback address with no keys configured
    rate_limit_per_s: float = 50.0  # per key (per client address when open): token refill; 0 disables
    rate_limit_burst: int = 100  # token bucket size
    log_json: bool = True  # structured JSON log lines carrying the request id
    # Triton faults: after a failed call the breaker answers 503 at once for this long, then lets one probe through.
    triton_breaker_cooldown_s: float = 2.0
    triton_restart_attempts: int = 5  # launcher: restarts of a crashed tritonserver before giving up
    triton_restart_backoff_s: float = 1.0  # first restart delay, doubled per consecutive crash (max 30 s)
    categories_file: str = ""  # empty: contract/categories.toml
    data_dir: str = str(PROJECT_ROOT / ".imgsel-data")  # embedded PostgreSQL data (`postgres/`) when no URL is set
    # Shared state (placeholder library, vote exemplars, search index): PostgreSQL with pgvector. Empty: the launcher
    # starts the embedded server under IMGSEL_DATA_DIR and hands its URL to the gateway. SecretStr: may hold a password.
    database_url: SecretStr = SecretStr("")
    database_pool_size: int = 10  # connections per gateway process
    database_timeout_s: float = 3.0  # wait for a pooled connection, and each statement; past it the request gets 503
    database_migrate: bool = True  # apply schema migrations at start-up (false: a separate `migrate` job does)
    database_breaker_cooldown_s: float = 2.0  # after a failed call: 503 at once for this long, then one probe
    placeholder_max_distance: int = LibraryRule.max_distance  # pHash bits: 0 false positives on 481 dev photos
    # A library match this near stands alone; between it and placeholder_max_distance it needs the learned score >=
    # placeholder_vote_head_min (gateway.decisions.placeholders.LibraryRule; BENCHMARKS.md).
    placeholder_alone_distance: int = LibraryRule.alone_distance
    # The unseen-placeholder vote (gateway.decisions.placeholders.VoteRule; chosen on dev data, BENCHMARKS.md).
    placeholder_vote_exemplars: int = VoteRule.exemplars  # K: exemplars (recent accepted products of the category)
    placeholder_vote_min_votes: int = VoteRule.min_votes  # "unlike" votes that call a placeholder
    placeholder_vote_similarity: float = VoteRule.min_similarity  # an exemplar votes "unlike" below this cosine
    placeholder_vote_head_min: float = VoteRule.head_min  # ... and rejects only with a placeholder score >= this
    placeholder_vote_similarity_alone: float = VoteRule.min_similarity_alone  # when no placeholder score ran
    placeholder_vote_min_exemplars: int = VoteRule.min_exemplars  # cold start: the vote runs from this many
    exemplar_capacity: int = 256  # exemplars kept per category (ring, most recent)
    exemplar_per_product: int = 2  # accepted images one product contributes
    exemplar_max_placeholder_score: float = 0.05  # accepted images feed the store only below this placeholder score
    # Visual search (gateway.stores.search_index): exact scan of a partition up to this size, its HNSW index above.
    search_exact_max: int = 2_000  # measured crossover with in-row vectors (BENCHMARKS.md)
    search_ef_search: int = 100  # HNSW candidate list (pgvector hnsw.ef_search): recall@10 0.95 vs 0.90 at 64, +1.6 ms

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as error:
            raise SettingsError("; ".join(_describe(problem) for problem in error.errors())) from None

    @field_validator("*", mode="before")
    @classmethod
    def parse_text(cls, value: Any, info: ValidationInfo) -> Any:
        """Text is read as Python reads it (int("1_000"), float(" 2.5 ")); booleans by parse_bool."""
        if not isinstance(value, str):
            return value
        kind = cls.model_fields[info.field_name].annotation
        return parse_bool(value) if kind is bool else kind(value)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from `environ` (default: the process environment) only; `overrides` win over it."""
        if environ is None:
            return cls(**overrides)
        sources = (InitSettingsSource(cls, overrides), _MappingEnvSource(cls, environ))
        return cls(_build_sources=(sources, overrides))


def _describe(problem: dict) -> str:
    name = str(problem["loc"][0]) if problem["loc"] else ""
    if name not in Settings.model_fields:
        return f"{name or 'settings'}: {problem['msg']}"
    expected = Settings.model_fields[name].annotation.__name__
    return f"{ENV_PREFIX}{name.upper()}={problem['input']!r}: expected {expected}"


class _MappingEnvSource(EnvSettingsSource):
    """The environment source of pydantic-settings over a given mapping instead of os.environ."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]):
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)
