"""The OpenAPI document declares the bearer scheme, each operation's scope and its 401/403/413/429 answers, and stays
a valid OpenAPI document (schemathesis validates it against the specification's meta-schema)."""

from __future__ import annotations

import schemathesis

from gateway.api.openapi import SCHEME

OPEN = {"/healthz", "/readyz", "/metrics"}


def operations(schema: dict):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def test_bearer_scheme_is_declared(client):
    schema = client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"][SCHEME] == {
        "type": "http",
        "scheme": "bearer",
        "description": schema["components"]["securitySchemes"][SCHEME]["description"],
    }


def test_every_keyed_operation_says_so_and_lists_the_door_answers(client):
    schema = client.get("/openapi.json").json()
    seen = set()
    for path, method, operation in operations(schema):
        seen.add(path)
        if path in OPEN:
            assert "security" not in operation and "401" not in operation["responses"], (method, path)
            continue
        assert operation["security"] == [{SCHEME: []}], (method, path)
        assert {"401", "403", "429"} <= set(operation["responses"]), (method, path)
        assert "Retry-After" in operation["responses"]["429"]["headers"]
        scope = "curate" if path in {"/v1/select", "/v1/dedup", "/v1/report", "/v1/search"} else "admin"
        assert f"scope `{scope}`" in operation["description"], (method, path)
        if "requestBody" in operation:
            assert "413" in operation["responses"], (method, path)
    assert OPEN <= seen and "/v1/placeholders/{placeholder_id}" in seen


def test_the_document_is_valid_openapi(client):
    schema = schemathesis.openapi.from_dict(client.get("/openapi.json").json())
    schema.validate()  # raises on a document the specification's meta-schema refuses
    assert len(list(schema.get_all_operations())) >= 13
