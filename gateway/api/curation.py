"""Curation routes: POST /v1/select, /v1/report, /v1/dedup."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response
from fastapi.responses import HTMLResponse

from gateway.api.deps import CurationDep, SettingsDep
from gateway.api.json_body import JsonRoute, json_response
from gateway.api.limits import check_image_count
from gateway.api.openapi import UNAVAILABLE
from gateway.report import render_report, thumbnails_for
from gateway.schemas import DedupResponse, ImagesRequest, SelectRequest, SelectResponse
from gateway.services.presenter import select_response

router = APIRouter(route_class=JsonRoute)


@router.post("/v1/select", response_model=SelectResponse, responses=UNAVAILABLE)
async def select_images(body: SelectRequest, curation: CurationDep, settings: SettingsDep) -> Response:
    check_image_count(len(body.images), settings.max_images_per_request)
    return json_response(select_response(await curation.curate(body)))


@router.post("/v1/report", response_class=HTMLResponse, responses=UNAVAILABLE)
async def report(body: SelectRequest, curation: CurationDep, settings: SettingsDep) -> HTMLResponse:
    """The /v1/select selection as a self-contained HTML page: inputs by supplier, the selected set in order."""
    check_image_count(len(body.images), settings.max_images_per_request)
    result = await curation.curate(body)
    response = select_response(result)

    def render() -> str:  # JPEG encoding of up to 200 thumbnails: off the event loop
        return render_report(body, response, thumbnails_for(response, result.thumbnails))

    return HTMLResponse(await asyncio.to_thread(render))


@router.post("/v1/dedup", response_model=DedupResponse, responses=UNAVAILABLE)
async def dedup_images(body: ImagesRequest, curation: CurationDep, settings: SettingsDep) -> Response:
    check_image_count(len(body.images), settings.max_images_per_request)
    return json_response(DedupResponse(groups=await curation.dedup(body.images)))
