"""The FastAPI gateway: settings, the wiring of stores, clients and services, middleware, handlers, routers."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from gateway.api import curation, health, openapi, placeholders, search
from gateway.api.access import AccessMiddleware, check_exposure, load_api_keys
from gateway.api.body_limit import BodyLimitMiddleware
from gateway.api.errors import install_error_handlers
from gateway.api.idle_trim import IdleTrimMiddleware
from gateway.api.request_context import RequestContextMiddleware
from gateway.decisions.rate_limit import RateLimiter
from gateway.logs import configure_logging
from gateway.settings import Settings
from gateway.wiring import wire
from runtime.idle_memory import IdleTrim


class DatabaseConfigError(ValueError):
    pass


ROUTERS = (curation.router, placeholders.router, search.router, health.router)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Clients, stores and services for the app's lifetime (in app.state, read by gateway.api.deps only)."""
    settings: Settings = app.state.settings
    if not settings.database_url.get_secret_value():
        raise DatabaseConfigError(
            "IMGSEL_DATABASE_URL is not set: start the service with `make run` (which starts the embedded "
            "PostgreSQL) or point it at PostgreSQL with pgvector"
        )
    async with AsyncExitStack() as cleanup:
        wiring = await wire(settings, cleanup)
        app.state.triton = wiring.triton
        app.state.database = wiring.database
        app.state.placeholders = wiring.placeholders
        app.state.curation = wiring.curation
        app.state.search = wiring.search
        # Everything built so far lives as long as the process: out of the collector's sight, a full collection no
        # longer walks ~155,000 start-up objects (a 104 ms pause once in 300 products, measured; issue #13).
        gc.freeze()
        app.state.idle_trim.start()
        try:
            yield
        finally:
            app.state.idle_trim.stop()


def create_app(settings: Settings | None = None) -> FastAPI:
    """Raises AccessConfigError (naming the variable) for malformed keys or an open API on a non-loopback host."""
    settings = settings or Settings()
    configure_logging(settings.log_json)  # before uvicorn logs "Started server process", so its lines are JSON too
    keys = load_api_keys(settings)
    check_exposure(settings, keys)
    app = FastAPI(
        title="imgsel",
        version="0.1.0",
        lifespan=lifespan,
        description="Curates the best product-page image set from several suppliers' images.",
    )
    app.state.settings = settings
    # Pure ASGI middleware, outermost last: request id, access log and metrics around everything; then keys and rate
    # limits before any body is read; then the body limit.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    limiter = RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst)
    app.add_middleware(AccessMiddleware, keys=keys, limiter=limiter)
    install_error_handlers(app, settings.retry_after_s)
    for router in ROUTERS:
        app.include_router(router)
    routes = [*app.routes, *(route for router in ROUTERS for route in router.routes)]  # docs routes, then ours
    app.state.idle_trim = IdleTrim()  # its thread runs for the lifespan
    app.add_middleware(IdleTrimMiddleware, trimmer=app.state.idle_trim)
    app.add_middleware(RequestContextMiddleware, routes=routes)
    openapi.install(app, keys_configured=bool(keys))
    return app


app = create_app()  # uvicorn's target: `gateway.app:app` (tools/launcher.py)
