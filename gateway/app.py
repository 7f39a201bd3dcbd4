"""The FastAPI gateway: settings, the wiring of stores, clients and services, middleware, handlers, routers."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from contract.categories_file import load_catalog
from gateway.api import curation, health, openapi, placeholders, search
from gateway.api.access import AccessMiddleware, check_exposure, load_api_keys
from gateway.api.body_limit import BodyLimitMiddleware
from gateway.api.errors import install_error_handlers
from gateway.api.request_context import RequestContextMiddleware
from gateway.clients.database import Database
from gateway.clients.fetch import Fetcher, fetch_client
from gateway.clients.triton import TritonAnalyzer
from gateway.decisions.placeholders import VoteRule
from gateway.decisions.rate_limit import RateLimiter
from gateway.logs import configure_logging
from gateway.services.analysis import AnalysisStep
from gateway.services.curation import CurationService
from gateway.services.placeholders import ExemplarVoting, PlaceholderLibraryService
from gateway.services.search import SearchService
from gateway.settings import Settings
from gateway.stores.exemplars import ExemplarStore
from gateway.stores.placeholders import PlaceholderLibrary
from gateway.stores.search_index import SearchIndex


class DatabaseConfigError(ValueError):
    pass


ROUTERS = (curation.router, placeholders.router, search.router, health.router)


def vote_rule(settings: Settings) -> VoteRule:
    return VoteRule(
        exemplars=settings.placeholder_vote_exemplars,
        min_votes=settings.placeholder_vote_min_votes,
        min_similarity=settings.placeholder_vote_similarity,
        head_min=settings.placeholder_vote_head_min,
        min_similarity_alone=settings.placeholder_vote_similarity_alone,
    )


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Clients, stores and services for the app's lifetime (in app.state, read by gateway.api.deps only)."""
    settings: Settings = app.state.settings
    if not settings.database_url.get_secret_value():
        raise DatabaseConfigError(
            "IMGSEL_DATABASE_URL is not set: start the service with `make run` (which starts the embedded "
            "PostgreSQL) or point it at PostgreSQL with pgvector"
        )
    catalog = load_catalog(settings.categories_file or None)
    triton = TritonAnalyzer(settings.triton_grpc_url, settings.triton_timeout_s, settings.triton_breaker_cooldown_s)
    async with AsyncExitStack() as cleanup:
        cleanup.push_async_callback(triton.close)  # callbacks run last-in first-out: Triton closes last
        http = await cleanup.enter_async_context(
            fetch_client(settings.fetch_timeout_s, settings.fetch_concurrency * 2, settings.fetch_allow_private)
        )
        fetcher = Fetcher(
            http,
            settings.fetch_timeout_s,
            settings.fetch_max_bytes,
            settings.fetch_concurrency,
            settings.max_pixels,
            settings.max_side,
        )
        database = Database(
            settings.database_url.get_secret_value(),
            settings.database_pool_size,
            settings.database_timeout_s,
            settings.database_migrate,
            settings.database_breaker_cooldown_s,
        )
        cleanup.push_async_callback(database.close)
        await database.prepare()  # schema at head now, or logged and retried by the first call
        library = PlaceholderLibrary(database)
        index = SearchIndex(database, settings.search_exact_max, settings.search_ef_search)
        exemplars = ExemplarStore(database, settings.exemplar_capacity, settings.exemplar_per_product)

        analysis = AnalysisStep(fetcher, triton, catalog.category_head)
        placeholder_library = PlaceholderLibraryService(library, analysis, settings.placeholder_max_distance)
        voting = ExemplarVoting(exemplars, vote_rule(settings), settings.exemplar_max_placeholder_score)
        app.state.triton = triton
        app.state.database = database
        app.state.placeholders = placeholder_library
        app.state.curation = CurationService(catalog, analysis, placeholder_library, voting)
        app.state.search = SearchService(catalog.category_head, analysis, index)
        # Everything built so far lives as long as the process: out of the collector's sight, a full collection no
        # longer walks ~155,000 start-up objects (a 104 ms pause once in 300 products, measured; issue #13).
        gc.freeze()
        yield


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
    app.add_middleware(RequestContextMiddleware, routes=routes)
    openapi.install(app, keys_configured=bool(keys))
    return app


app = create_app()  # uvicorn's target: `gateway.app:app` (tools/launcher.py)
