"""gateway.api.json_body: the image-list bodies are validated from their bytes by pydantic in one pass, FastAPI keeps
the finished model; every other body, and every body that fails there, goes the orjson way with FastAPI's 422s."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from gateway.api.json_body import VALIDATED_FROM_JSON, JsonRoute, OrjsonRequest
from gateway.schemas import ImagesRequest, SelectRequest

BODY = b'{"product_id": "p", "images": [{"id": "a", "url": "https://cdn.example/1.jpg"}]}'


class Other(BaseModel):
    threshold: float


def app_recording_bodies(seen: list) -> TestClient:
    """Routes that hand back the object FastAPI validated, and record what the request's json() gave FastAPI."""
    router = APIRouter(route_class=JsonRoute)

    @router.post("/select")
    async def select(body: SelectRequest) -> dict:
        seen.append(body)
        return {"ok": True}

    @router.post("/other")
    async def other(body: Other) -> dict:
        seen.append(body)
        return {"ok": True}

    app = FastAPI()
    app.include_router(router)
    return TestClient(app)


def test_image_bodies_are_validated_once_from_their_bytes(monkeypatch):
    parsed = []
    original = OrjsonRequest.json

    async def recording(self):
        parsed.append(await original(self))
        return parsed[-1]

    monkeypatch.setattr(OrjsonRequest, "json", recording)
    seen: list = []
    client = app_recording_bodies(seen)
    assert client.post("/select", content=BODY, headers={"content-type": "application/json"}).status_code == 200
    assert isinstance(parsed[-1], SelectRequest)  # pydantic validated the bytes
    assert seen[-1] is parsed[-1]  # and FastAPI kept that model, not a copy validated again
    assert seen[-1] == SelectRequest.model_validate_json(BODY)
    assert client.post("/other", json={"threshold": 0.5}).status_code == 200
    assert parsed[-1] == {"threshold": 0.5}  # other bodies: orjson's dict, validated by FastAPI
    assert VALIDATED_FROM_JSON == {SelectRequest, ImagesRequest}


def test_a_body_that_fails_validation_gets_fastapi_s_422():
    client = app_recording_bodies([])
    response = client.post(
        "/select", content=b'{"product_id": "", "images": []}', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert {tuple(d["loc"]) for d in response.json()["detail"]} == {("body", "product_id"), ("body", "images")}
    malformed = client.post("/select", content=b'{"images": [', headers={"content-type": "application/json"})
    assert malformed.status_code == 422 and malformed.json()["detail"][0]["type"] == "json_invalid"
