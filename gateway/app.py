"""The FastAPI gateway: settings, the wiring of stores, clients and services, middleware, handlers, routers."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI, Request

from contract.categories_file import load_catalog
from gateway.api import curation, health, placeholders, search
from gateway.api.errors import install_error_handlers
from gateway.clients.fetch import Fetcher
from gateway.clients.triton import TritonAnalyzer
from gateway.decisions.placeholders import VoteRule
from gateway.metrics import LATENCY, REQUESTS
from gateway.services.analysis import AnalysisStep
from gateway.services.curation import CurationService
from gateway.services.placeholders import ExemplarVoting, PlaceholderLibraryService
from gateway.services.search import SearchService
from gateway.settings import Settings
from gateway.stores.exemplars import ExemplarStore
from gateway.stores.placeholders import PlaceholderLibrary
from gateway.stores.search_index import SearchIndex


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
    data_dir = Path(settings.data_dir)
    catalog = load_catalog(settings.categories_file or None)
    triton = TritonAnalyzer(settings.triton_grpc_url, settings.triton_timeout_s, settings.triton_breaker_cooldown_s)
    limits = httpx.Limits(max_connections=settings.fetch_concurrency * 2)
    async with AsyncExitStack() as cleanup:
        cleanup.push_async_callback(triton.close)  # callbacks run last-in first-out: Triton closes last
        http = await cleanup.enter_async_context(httpx.AsyncClient(timeout=settings.fetch_timeout_s, limits=limits))
        fetcher = Fetcher(
            http,
            settings.fetch_timeout_s,
            settings.fetch_max_bytes,
            settings.fetch_concurrency,
            settings.fetch_allow_private,
        )
        library = PlaceholderLibrary(data_dir / "placeholders.sqlite")
        cleanup.callback(library.close)
        index = SearchIndex(data_dir / "search.sqlite", settings.search_exact_max, settings.search_ef_search)
        cleanup.callback(index.close)
        exemplars = ExemplarStore(
            data_dir / "exemplars.sqlite", settings.exemplar_capacity, settings.exemplar_per_product
        )
        cleanup.callback(exemplars.close)

        analysis = AnalysisStep(fetcher, triton, catalog.category_head)
        placeholder_library = PlaceholderLibraryService(library, analysis, settings.placeholder_max_distance)
        voting = ExemplarVoting(exemplars, vote_rule(settings), settings.exemplar_max_placeholder_score)
        app.state.triton = triton
        app.state.placeholders = placeholder_library
        app.state.curation = CurationService(catalog, analysis, triton, placeholder_library, voting)
        app.state.search = SearchService(catalog.category_head, analysis, index)
        yield


async def count_requests(request: Request, call_next):
    """Prometheus: requests by route template and status code, latency by route."""
    started = time.perf_counter()
    response = await call_next(request)
    route = request.scope.get("route")
    path = route.path if route is not None else "unmatched"
    REQUESTS.labels(route=path, code=str(response.status_code)).inc()
    LATENCY.labels(route=path).observe(time.perf_counter() - started)
    return response


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    app = FastAPI(
        title="imgsel",
        version="0.1.0",
        lifespan=lifespan,
        description="Curates the best product-page image set from several suppliers' images.",
    )
    app.state.settings = settings
    app.middleware("http")(count_requests)
    install_error_handlers(app, settings.retry_after_s)
    for router in (curation.router, placeholders.router, search.router, health.router):
        app.include_router(router)
    return app


app = create_app()  # uvicorn's target: `gateway.app:app` (tools/launcher.py)
