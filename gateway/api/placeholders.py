"""The placeholder library: POST, GET /v1/placeholders, DELETE /v1/placeholders/{id}."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from gateway.api.deps import PlaceholdersDep, SettingsDep
from gateway.api.json_body import JsonRoute
from gateway.api.limits import check_image_count
from gateway.api.openapi import NOT_FOUND, UNAVAILABLE
from gateway.schemas import Deleted, ImagesRequest, PlaceholderList, PlaceholdersAdded
from gateway.services.presenter import placeholder_list, placeholders_added

router = APIRouter(route_class=JsonRoute)


@router.post("/v1/placeholders", response_model=PlaceholdersAdded, responses=UNAVAILABLE)
async def add_placeholders(
    body: ImagesRequest, placeholders: PlaceholdersDep, settings: SettingsDep
) -> PlaceholdersAdded:
    """Add known placeholder images to the library (persistent); each image's `id` becomes its library id."""
    check_image_count(len(body.images), settings.max_images_per_request)
    return placeholders_added(await placeholders.add(body.images))


@router.get("/v1/placeholders", response_model=PlaceholderList, responses=UNAVAILABLE)
async def list_placeholders(placeholders: PlaceholdersDep) -> PlaceholderList:
    return placeholder_list(await placeholders.entries())


@router.delete("/v1/placeholders/{placeholder_id}", response_model=Deleted, responses={**UNAVAILABLE, **NOT_FOUND})
async def delete_placeholder(placeholder_id: str, placeholders: PlaceholdersDep):
    if not await placeholders.remove(placeholder_id):
        return JSONResponse(status_code=404, content={"detail": f"no placeholder with id {placeholder_id!r}"})
    return Deleted(deleted=placeholder_id)
