"""Shared by the API tests: settings for an app with no Triton listening and a fresh PostgreSQL database, request
bodies, the 413 and 422 checks."""

from __future__ import annotations

import base64
import tempfile

from gateway.settings import Settings
from tests.database import fresh_database
from tests.helpers import encode, product_photo
from tools.launcher import free_port

JPEG_B64 = base64.b64encode(encode(product_photo(side=64))).decode()
RETRY_AFTER_S = 7


def settings(**overrides) -> Settings:
    """Defaults (not this process's IMGSEL_ variables), Triton on a port nobody listens on, a fresh database (of the
    test process's embedded server, at schema head) and data dir."""
    defaults = {
        "triton_grpc_url": f"127.0.0.1:{free_port()}",
        "triton_timeout_s": 2,
        "retry_after_s": RETRY_AFTER_S,
        "data_dir": tempfile.mkdtemp(prefix="imgsel-test-data-"),
    }
    if "database_url" not in overrides:
        defaults["database_url"] = fresh_database()
    return Settings.from_env({}, **{**defaults, **overrides})


def select_body(*images, **fields) -> dict:
    return {"product_id": "p-1", "images": list(images), **fields}


def assert_413_images(response, field: str, limit: int) -> dict:
    """More images than IMGSEL_MAX_IMAGES_PER_REQUEST: 413 naming the limit and the field."""
    assert response.status_code == 413, response.text
    body = response.json()
    assert body["limit"] == limit and body["field"] == field
    assert f"at most {limit}" in body["message"] and body["message"].startswith(f"{field}:")
    return body


def assert_422(response, field: str) -> dict:
    assert response.status_code == 422, response.text
    body = response.json()
    assert field in body["message"], body["message"]
    assert body["detail"], "FastAPI's detail list is kept"
    return body
