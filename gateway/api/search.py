"""Visual search: POST, GET /v1/index, DELETE /v1/index/{product_id}, POST /v1/search."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from gateway.api.deps import SearchDep, SettingsDep
from gateway.api.json_body import JsonRoute
from gateway.api.limits import check_image_count
from gateway.api.openapi import NOT_FOUND, UNAVAILABLE
from gateway.schemas import (
    IndexRequest,
    IndexResponse,
    IndexStats,
    ProductDeleted,
    SearchRequest,
    SearchResponse,
)
from gateway.services.presenter import index_response, search_response

router = APIRouter(route_class=JsonRoute)


@router.post("/v1/index", response_model=IndexResponse, responses=UNAVAILABLE)
async def index_items(body: IndexRequest, service: SearchDep, settings: SettingsDep) -> IndexResponse:
    """Add catalog images to the visual-search index (persistent), each in its top-level category's partition."""
    check_image_count(len(body.items), settings.max_images_per_request, field="items")
    return index_response(await service.index_items(body))


@router.get("/v1/index", response_model=IndexStats, responses=UNAVAILABLE)
async def index_stats(service: SearchDep) -> IndexStats:
    return IndexStats(partitions=await service.partitions())


# `:path`: product ids may hold "/"
@router.delete("/v1/index/{product_id:path}", response_model=ProductDeleted, responses={**UNAVAILABLE, **NOT_FOUND})
async def delete_product(product_id: str, service: SearchDep):
    removed = await service.remove_product(product_id)
    if not removed:
        return JSONResponse(status_code=404, content={"detail": f"no indexed product with id {product_id!r}"})
    return ProductDeleted(deleted=product_id, images=removed)


@router.post("/v1/search", response_model=SearchResponse, responses=UNAVAILABLE)
async def search(body: SearchRequest, service: SearchDep) -> SearchResponse:
    """Visual search with the category cascade: predict the top-level category, search only its partition. A query
    image that cannot be fetched or decoded is a 422 naming `image`."""
    return search_response(await service.search(body))
