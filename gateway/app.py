"""The FastAPI gateway: HTTP contract, validation, errors; the work is in gateway.service."""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from contract.categories_file import load_catalog
from contract.tensors import ENSEMBLE
from gateway.clients.fetch import Fetcher
from gateway.clients.triton import TritonAnalyzer, TritonUnavailable
from gateway.config import Settings
from gateway.decisions import VoteRule
from gateway.metrics import LATENCY, REQUESTS, TRITON_UNAVAILABLE
from gateway.report import render_report, thumbnails_for
from gateway.schemas import (
    DedupResponse,
    ImagesRequest,
    IndexRequest,
    IndexResponse,
    IndexStats,
    PlaceholderList,
    PlaceholdersAdded,
    SearchRequest,
    SearchResponse,
    SelectRequest,
    SelectResponse,
)
from gateway.service import Curator, InvalidField
from gateway.stores.exemplars import ExemplarStore
from gateway.stores.placeholders import PlaceholderLibrary
from gateway.stores.search_index import SearchIndex

log = logging.getLogger("imgsel.gateway")
REQUIRED_MODELS = (ENSEMBLE, "preprocess", "backbone", "quality")


@asynccontextmanager
async def lifespan(app: FastAPI):
    settings: Settings = app.state.settings
    catalog = load_catalog(settings.categories_file or None)
    analyzer = TritonAnalyzer(settings.triton_grpc_url, settings.triton_timeout_s)
    limits = httpx.Limits(max_connections=settings.fetch_concurrency * 2)
    async with httpx.AsyncClient(timeout=settings.fetch_timeout_s, limits=limits) as http:
        fetcher = Fetcher(
            http,
            settings.fetch_timeout_s,
            settings.fetch_max_bytes,
            settings.fetch_concurrency,
            settings.fetch_allow_private,
        )
        placeholders = PlaceholderLibrary(Path(settings.data_dir) / "placeholders.sqlite")
        search_index = SearchIndex(
            Path(settings.data_dir) / "search.sqlite", settings.search_exact_max, settings.search_ef_search
        )
        exemplars = ExemplarStore(
            Path(settings.data_dir) / "exemplars.sqlite", settings.exemplar_capacity, settings.exemplar_per_product
        )
        vote_rule = VoteRule(
            exemplars=settings.placeholder_vote_exemplars,
            min_votes=settings.placeholder_vote_min_votes,
            min_similarity=settings.placeholder_vote_similarity,
            head_min=settings.placeholder_vote_head_min,
            min_similarity_alone=settings.placeholder_vote_similarity_alone,
        )
        app.state.curator = Curator(
            catalog,
            fetcher,
            analyzer,
            placeholders,
            settings.placeholder_max_distance,
            exemplars=exemplars,
            search_index=search_index,
            vote_rule=vote_rule,
            exemplar_max_placeholder_score=settings.exemplar_max_placeholder_score,
        )
        app.state.analyzer = analyzer
        yield
    placeholders.close()
    exemplars.close()
    search_index.close()
    await analyzer.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    app = FastAPI(
        title="imgsel",
        version="0.1.0",
        lifespan=lifespan,
        description="Curates the best product-page image set from several suppliers' images.",
    )
    app.state.settings = settings or Settings.from_env()

    @app.middleware("http")
    async def count_requests(request: Request, call_next):
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = route.path if route is not None else "unmatched"
        REQUESTS.labels(route=path, code=str(response.status_code)).inc()
        LATENCY.labels(route=path).observe(time.perf_counter() - started)
        return response

    @app.exception_handler(TritonUnavailable)
    async def triton_unavailable(_request: Request, error: TritonUnavailable):
        TRITON_UNAVAILABLE.inc()
        log.warning("503: %s", error)
        return JSONResponse(
            status_code=503,
            content={"detail": f"inference server unavailable: {error}"},
            headers={"Retry-After": str(app.state.settings.retry_after_s)},
        )

    @app.exception_handler(InvalidField)
    async def invalid_field(_request: Request, error: InvalidField):
        loc = ["body", *(int(p) if p.isdigit() else p for p in error.field.split("."))]
        return JSONResponse(
            status_code=422, content={"message": str(error), "detail": [{"loc": loc, "msg": str(error)}]}
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, error: RequestValidationError):
        # FastAPI's detail list, plus one sentence naming each offending field.
        problems = [f"{'.'.join(str(p) for p in e['loc'] if p != 'body')}: {e['msg']}" for e in error.errors()]
        return JSONResponse(status_code=422, content={"message": "; ".join(problems), "detail": jsonable_errors(error)})

    @app.post("/v1/select", response_model=SelectResponse)
    async def select_images(body: SelectRequest, request: Request) -> SelectResponse:
        check_image_count(len(body.images), request)
        return await request.app.state.curator.select(body)

    @app.post("/v1/report", response_class=HTMLResponse)
    async def report(body: SelectRequest, request: Request) -> HTMLResponse:
        """The /v1/select selection as a self-contained HTML page: inputs by supplier, the selected set in order."""
        check_image_count(len(body.images), request)
        curation = await request.app.state.curator.curate(body)

        def render() -> str:  # JPEG encoding of up to 200 thumbnails: off the event loop
            return render_report(body, curation.response, thumbnails_for(curation.response, curation.thumbnails))

        return HTMLResponse(await asyncio.to_thread(render))

    @app.post("/v1/dedup", response_model=DedupResponse)
    async def dedup_images(body: ImagesRequest, request: Request) -> DedupResponse:
        check_image_count(len(body.images), request)
        return DedupResponse(groups=await request.app.state.curator.dedup(body.images))

    @app.post("/v1/placeholders", response_model=PlaceholdersAdded)
    async def add_placeholders(body: ImagesRequest, request: Request) -> PlaceholdersAdded:
        """Add known placeholder images to the library (persistent); each image's `id` becomes its library id."""
        check_image_count(len(body.images), request)
        return await request.app.state.curator.add_placeholders(body.images)

    @app.get("/v1/placeholders", response_model=PlaceholderList)
    async def list_placeholders(request: Request) -> PlaceholderList:
        entries = request.app.state.curator.placeholders.entries()
        return PlaceholderList(placeholders=[e.as_json() for e in entries])

    @app.delete("/v1/placeholders/{placeholder_id}")
    async def delete_placeholder(placeholder_id: str, request: Request):
        removed = await asyncio.to_thread(request.app.state.curator.placeholders.remove, placeholder_id)
        if not removed:
            return JSONResponse(status_code=404, content={"detail": f"no placeholder with id {placeholder_id!r}"})
        return {"deleted": placeholder_id}

    @app.post("/v1/index", response_model=IndexResponse)
    async def index_items(body: IndexRequest, request: Request) -> IndexResponse:
        """Add catalog images to the visual-search index (persistent), each in its top-level category's partition."""
        check_image_count(len(body.items), request, field="items")
        return await request.app.state.curator.index_items(body)

    @app.get("/v1/index", response_model=IndexStats)
    async def index_stats(request: Request) -> IndexStats:
        return IndexStats(partitions=request.app.state.curator.search_index.partitions())

    @app.delete("/v1/index/{product_id:path}")  # product ids may contain "/"
    async def delete_product(product_id: str, request: Request):
        removed = await asyncio.to_thread(request.app.state.curator.search_index.remove_product, product_id)
        if not removed:
            return JSONResponse(status_code=404, content={"detail": f"no indexed product with id {product_id!r}"})
        return {"deleted": product_id, "images": removed}

    @app.post("/v1/search", response_model=SearchResponse)
    async def search(body: SearchRequest, request: Request) -> SearchResponse:
        """Visual search with the category cascade: predict the top-level category, search only its partition. A query
        image that cannot be fetched or decoded is a 422 naming `image`."""
        return await request.app.state.curator.search(body)

    @app.get("/healthz")
    async def healthz():
        return {"status": "alive"}

    @app.get("/readyz")
    async def readyz(request: Request):
        try:
            states = await request.app.state.analyzer.model_states()
        except TritonUnavailable as error:
            return JSONResponse(
                status_code=503,
                content={"ready": False, "detail": str(error)},
                headers={"Retry-After": str(app.state.settings.retry_after_s)},
            )
        missing = [m for m in REQUIRED_MODELS if m not in states]
        not_ready = {name: state for name, state in states.items() if state != "READY"}
        ready = not missing and not not_ready
        return JSONResponse(
            status_code=200 if ready else 503, content={"ready": ready, "models": states, "missing": missing}
        )

    @app.get("/metrics")
    async def metrics():
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


class TooManyImages(RequestValidationError):
    pass


def check_image_count(count: int, request: Request, field: str = "images") -> None:
    limit = request.app.state.settings.max_images_per_request
    if count > limit:
        raise TooManyImages(
            [{"loc": ("body", field), "msg": f"at most {limit} images per request, got {count}", "type": "too_long"}]
        )


def jsonable_errors(error: RequestValidationError) -> list[dict]:
    return [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in error.errors()]


app = create_app()
