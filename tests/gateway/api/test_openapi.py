"""The OpenAPI document: with keys configured, the bearer scheme, each operation's scope and its 401/403 answers; an
open deployment declares no security; 413 and 429 always; 503 where a route calls Triton or the state store, 404 on
the deletes, /metrics as text; a valid OpenAPI document either way (schemathesis validates it against the
specification's meta-schema)."""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient

from gateway.api.openapi import SCHEME
from gateway.app import create_app
from tests.gateway.api.support import settings

OPEN = {"/healthz", "/readyz", "/metrics"}
CURATE = {"/v1/select", "/v1/dedup", "/v1/report", "/v1/search"}


@pytest.fixture(scope="module")
def keyed_schema() -> dict:
    with TestClient(create_app(settings(api_keys="curate:k1,admin:k2"))) as client:
        return client.get("/openapi.json").json()


def operations(schema: dict):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def test_bearer_scheme_is_declared_with_keys(keyed_schema):
    scheme = keyed_schema["components"]["securitySchemes"][SCHEME]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"


def test_every_keyed_operation_says_so_and_lists_the_door_answers(keyed_schema):
    seen = set()
    for path, method, operation in operations(keyed_schema):
        seen.add(path)
        if path in OPEN:
            assert "security" not in operation and "401" not in operation["responses"], (method, path)
            continue
        assert operation["security"] == [{SCHEME: []}], (method, path)
        assert {"401", "403", "429"} <= set(operation["responses"]), (method, path)
        assert "Retry-After" in operation["responses"]["429"]["headers"]
        scope = "curate" if path in CURATE else "admin"
        assert f"scope `{scope}`" in operation["description"], (method, path)
        if "requestBody" in operation:
            assert "413" in operation["responses"], (method, path)
    assert OPEN <= seen and CURATE <= seen and "/v1/placeholders/{placeholder_id}" in seen


def test_an_open_deployment_declares_no_security(client):
    schema = client.get("/openapi.json").json()
    assert SCHEME not in schema.get("components", {}).get("securitySchemes", {})
    for path, method, operation in operations(schema):
        assert "security" not in operation and "401" not in operation["responses"], (method, path)
        if path not in OPEN:
            assert "429" in operation["responses"], (method, path)


def test_the_documents_are_valid_openapi(client, keyed_schema):
    for document in (keyed_schema, client.get("/openapi.json").json()):
        schema = schemathesis.openapi.from_dict(document)
        schema.validate()  # raises on a document the specification's meta-schema refuses
        assert len(list(schema.get_all_operations())) >= 13


TRITON = {("/v1/select", "post"), ("/v1/report", "post"), ("/v1/dedup", "post"), ("/v1/placeholders", "post"),
          ("/v1/index", "post"), ("/v1/search", "post")}  # fmt: skip
STORE = {("/v1/placeholders", "get"), ("/v1/placeholders/{placeholder_id}", "delete"), ("/v1/index", "get"),
         ("/v1/index/{product_id}", "delete")}  # fmt: skip


def test_every_answer_the_routes_give_is_declared(client):
    schema = client.get("/openapi.json").json()
    for path, method, operation in operations(schema):
        responses = operation["responses"]
        if (path, method) in TRITON | STORE:
            assert responses["503"]["content"]["application/json"]["schema"]["required"] == ["detail"], (method, path)
            assert "Retry-After" in responses["503"]["headers"], (method, path)
        elif path != "/readyz":
            assert "503" not in responses, (method, path)
    paths = schema["paths"]
    for path in ("/v1/placeholders/{placeholder_id}", "/v1/index/{product_id}"):
        assert "404" in paths[path]["delete"]["responses"], path
    assert "Retry-After" in paths["/readyz"]["get"]["responses"]["503"]["headers"]
    assert set(paths["/metrics"]["get"]["responses"]["200"]["content"]) == {"text/plain"}
    detail = schema["components"]["schemas"]["ValidationError"]
    assert {"loc", "msg", "type"} <= set(detail["required"])  # what the 422 handlers in gateway.api.errors must give
