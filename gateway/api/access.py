"""API keys and rate limits at the door: a pure ASGI middleware that answers 401, 403 or 429 before any body is read
or parsed (the rules are gateway.decisions.access and gateway.decisions.rate_limit), and the loading of keys from
IMGSEL_API_KEYS / IMGSEL_API_KEYS_FILE."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.decisions.access import (
    AccessConfigError,
    ApiKey,
    allows,
    bearer_token,
    combine,
    exposure_problem,
    match_key,
    parse_keys_file,
    parse_keys_variable,
    required_scope,
)
from gateway.decisions.rate_limit import RateLimiter, retry_after_header
from gateway.settings import Settings

KEY_ID_SCOPE_KEY = "imgsel.key_id"  # the caller's key id in the ASGI scope, for the access log line


def load_api_keys(settings: Settings) -> tuple[ApiKey, ...]:
    """Both sources together; a malformed entry or an unreadable file raises AccessConfigError naming the variable."""
    from_file: list[ApiKey] = []
    if settings.api_keys_file:
        try:
            text = Path(settings.api_keys_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            where = f"IMGSEL_API_KEYS_FILE={settings.api_keys_file}"
            raise AccessConfigError(f"{where}: cannot read it ({error})") from None
        from_file = parse_keys_file(text)
    return combine(parse_keys_variable(settings.api_keys.get_secret_value()), from_file)


def check_exposure(settings: Settings, keys: tuple[ApiKey, ...]) -> None:
    problem = exposure_problem(settings.host, bool(keys), settings.allow_unauthenticated)
    if problem:
        raise AccessConfigError(problem)


def header(scope: Scope, name: bytes) -> bytes | None:
    return next((value for key, value in scope.get("headers", ()) if key.lower() == name), None)


def request_path(scope: Scope) -> str:
    """The path the routes see: without the root_path a proxy prefix adds."""
    path, root = scope.get("path", ""), scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


class AccessMiddleware:
    """Open paths pass. With keys configured: no or unknown key -> 401 with WWW-Authenticate, a key whose scope does
    not cover the path -> 403. Then the key's token bucket -> 429 with Retry-After. An open deployment (no keys)
    has no caller identity and is not rate limited: behind a Kubernetes Service every caller may arrive from one
    (SNAT) address, so a per-address bucket would throttle the whole service as one client."""

    def __init__(
        self,
        app: ASGIApp,
        keys: tuple[ApiKey, ...],
        limiter: RateLimiter,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.app = app
        self.keys = keys
        self.limiter = limiter
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        required = required_scope(request_path(scope))
        if required is None:
            return await self.app(scope, receive, send)
        if not self.keys:
            return await self.app(scope, receive, send)
        token = bearer_token(header(scope, b"authorization"))
        key = match_key(token, self.keys) if token is not None else None
        if key is None:
            return await self.unauthorized(token is not None, scope, receive, send)
        scope[KEY_ID_SCOPE_KEY] = key.key_id
        if not allows(key.scope, required):
            message = f"key {key.key_id} has scope {key.scope.value}; {request_path(scope)} needs {required.value}"
            return await JSONResponse({"message": message}, status_code=403)(scope, receive, send)
        wait_s = self.limiter.take(key.key_id, self.clock())
        if wait_s > 0:
            retry_after = retry_after_header(wait_s)
            body = {
                "message": f"rate limit of {self.limiter.per_s:g} requests/s (burst {self.limiter.burst:g}) "
                f"exceeded; retry after {retry_after} s (IMGSEL_RATE_LIMIT_PER_S, IMGSEL_RATE_LIMIT_BURST)",
                "limit": self.limiter.per_s,
            }
            response = JSONResponse(body, status_code=429, headers={"Retry-After": retry_after})
            return await response(scope, receive, send)
        await self.app(scope, receive, send)

    @staticmethod
    async def unauthorized(presented: bool, scope: Scope, receive: Receive, send: Send) -> None:
        if presented:
            message, challenge = "invalid API key", 'Bearer realm="imgsel", error="invalid_token"'
        else:
            message, challenge = "missing API key: send Authorization: Bearer <key>", 'Bearer realm="imgsel"'
        response = JSONResponse({"message": message}, status_code=401, headers={"WWW-Authenticate": challenge})
        await response(scope, receive, send)
