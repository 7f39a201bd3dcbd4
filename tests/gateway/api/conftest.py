"""Apps with the real lifespan (stores in a temporary folder) and no Triton listening."""

import pytest
from fastapi.testclient import TestClient

from gateway.app import create_app
from tests.gateway.api.support import settings


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(settings())) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def small_client():
    with TestClient(create_app(settings(max_images_per_request=2))) as test_client:
        yield test_client
