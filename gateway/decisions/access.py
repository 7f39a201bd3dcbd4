"""Who may call what (DESIGN.md "Access and limits"): API key entries, the scope each path needs, the constant-time
key match, and the rule that refuses to serve an open API beyond loopback. Plain data in, plain data out: reading
the keys file and answering HTTP happen in gateway.api.access."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum


class Scope(StrEnum):
    CURATE = "curate"
    ADMIN = "admin"


# Probes, metrics and the API docs answer without a key (Kubernetes probes and Prometheus carry none).
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
# Curation and visual-search queries; every other path (the placeholder library, the search index, anything
# unknown) needs `admin`, so a route added later is closed until someone decides otherwise.
CURATE_PATHS = frozenset({"/v1/select", "/v1/dedup", "/v1/report", "/v1/search"})


class AccessConfigError(ValueError):
    """A malformed key entry; the message names the variable and the entry's position, never the key."""


@dataclass(frozen=True)
class ApiKey:
    scope: Scope
    digest: bytes  # sha256 of the key: compared instead of the text, so the length of a guess leaks nothing
    key_id: str  # `<scope>-<8 hex of the digest>`: what logs, metrics and rate limits see


def digest(token: bytes) -> bytes:
    return hashlib.sha256(token).digest()


def parse_entry(entry: str, where: str) -> ApiKey:
    """One `scope:key` entry; `where` (variable and position) starts every error message."""
    scope_text, sep, key = entry.strip().partition(":")
    scope_text = scope_text.strip()
    if not sep:
        raise AccessConfigError(f"{where}: expected scope:key (scope curate or admin)")
    if scope_text not in {s.value for s in Scope}:
        raise AccessConfigError(f"{where}: unknown scope {scope_text!r} (curate or admin)")
    if not key:
        raise AccessConfigError(f"{where}: empty key")
    if not key.isascii() or not key.isprintable() or any(c in key for c in " \t,"):
        raise AccessConfigError(f"{where}: the key must be printable ASCII without spaces or commas")
    key_digest = digest(key.encode())
    return ApiKey(Scope(scope_text), key_digest, f"{scope_text}-{key_digest.hex()[:8]}")


def parse_keys_variable(text: str, source: str = "IMGSEL_API_KEYS") -> list[ApiKey]:
    """Comma-separated entries; empty entries (a trailing comma) are skipped, positions count every entry."""
    entries = enumerate(text.split(","), start=1)
    return [parse_entry(entry, f"{source} entry {n}") for n, entry in entries if entry.strip()]


def parse_keys_file(text: str, source: str = "IMGSEL_API_KEYS_FILE") -> list[ApiKey]:
    """One entry per line; blank lines and `#` comments are ignored (positions are line numbers)."""
    keys = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            keys.append(parse_entry(line, f"{source} line {number}"))
    return keys


def combine(*groups: Iterable[ApiKey]) -> tuple[ApiKey, ...]:
    """All configured keys; one key given twice with two different scopes is refused as ambiguous."""
    by_digest: dict[bytes, ApiKey] = {}
    for key in (k for group in groups for k in group):
        known = by_digest.setdefault(key.digest, key)
        if known.scope != key.scope:
            raise AccessConfigError(f"the key {key.key_id} is configured with two scopes (curate and admin)")
    return tuple(by_digest.values())


def match_key(token: bytes, keys: Sequence[ApiKey]) -> ApiKey | None:
    """The configured key equal to `token`. Compares against every key with hmac.compare_digest and no early exit,
    so neither the timing nor the number of comparisons says which key (or how much of one) matched."""
    presented = digest(token)
    found = None
    for key in keys:
        if hmac.compare_digest(presented, key.digest):
            found = key
    return found


def bearer_token(authorization: bytes | None) -> bytes | None:
    """The token of an `Authorization: Bearer <token>` header (scheme case-insensitive), else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(b" ")
    token = token.strip()
    return token if scheme.lower() == b"bearer" and token else None


def required_scope(path: str) -> Scope | None:
    """The scope a request path needs; None for the open paths."""
    path = path.rstrip("/") or "/"
    if path in OPEN_PATHS:
        return None
    return Scope.CURATE if path in CURATE_PATHS else Scope.ADMIN


def allows(granted: Scope, required: Scope) -> bool:
    return granted is Scope.ADMIN or granted is required


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve anywhere


def exposure_problem(host: str, keys_configured: bool, allow_unauthenticated: bool) -> str | None:
    """Why serving on `host` is refused, or None: with no keys the API is open, so it stays on loopback unless the
    operator says otherwise."""
    if keys_configured or allow_unauthenticated or is_loopback(host):
        return None
    return (
        f"IMGSEL_HOST={host} is not a loopback address and no API keys are configured "
        "(IMGSEL_API_KEYS or IMGSEL_API_KEYS_FILE): anyone who reaches the port could change the placeholder library "
        "and the search index. Configure keys, bind 127.0.0.1, or set IMGSEL_ALLOW_UNAUTHENTICATED=true."
    )
