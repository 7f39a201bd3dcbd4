"""The OpenAPI document says what the access middleware does for this deployment: when keys are configured, a bearer
security scheme on every operation that needs a key (from gateway.decisions.access.required_scope, the one copy of the
rule), the scope in its description and the 401/403 answers; always the 413 and 429 answers. An open deployment
declares no security it does not enforce (schemathesis's ignored_auth check would rightly flag it).

Answers that only some routes give are declared by the routes (`responses=`) from the one copy here: UNAVAILABLE on
every operation that calls Triton or the state store, NOT_FOUND on the deletes."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from gateway.decisions.access import required_scope
from gateway.schemas import Detail

SCHEME = "apiKey"
_MESSAGE = {"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]}
_LIMIT = {
    "type": "object",
    "properties": {"message": {"type": "string"}, "limit": {"type": "number"}, "field": {"type": "string"}},
    "required": ["message", "limit"],
}
RETRY_AFTER = {"Retry-After": {"description": "seconds until the request may succeed", "schema": {"type": "string"}}}


def _answer(description: str, schema: dict, headers: dict | None = None) -> dict:
    answer: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": schema}}}
    return answer | ({"headers": headers} if headers else {})


# FastAPI `responses=` entries (answers from gateway.api.errors and the routes), spelled out rather than `model=`:
# FastAPI files a model under the route's own media type, which for /v1/report is text/html.
_DETAIL = Detail.model_json_schema()
UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: _answer("inference server or state store unavailable", _DETAIL, RETRY_AFTER)
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: _answer("no entry with that id", _DETAIL)}


def document_access(schema: dict, keys_configured: bool) -> dict:
    """Adds the scheme and, per operation, its security and the access/limit answers (in place; returns it)."""
    if keys_configured:
        schema.setdefault("components", {}).setdefault("securitySchemes", {})[SCHEME] = {
            "type": "http",
            "scheme": "bearer",
            "description": "API key. Scope `curate`: select, dedup, report, search; scope `admin`: everything.",
        }
    for path, operations in schema.get("paths", {}).items():
        scope = required_scope(path)
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if "requestBody" in operation:
                responses.setdefault("413", _answer("request body or image count over a limit", _LIMIT))
            if scope is None:
                continue
            responses.setdefault("429", _answer("rate limit exceeded", _LIMIT, RETRY_AFTER))
            if not keys_configured:
                continue
            operation["security"] = [{SCHEME: []}]
            note = f"Needs an API key with scope `{scope.value}`" + (" or `admin`." if scope.value != "admin" else ".")
            operation["description"] = f"{operation.get('description', '')}\n\n{note}".strip()
            responses.setdefault("401", _answer("no or unknown API key", _MESSAGE))
            responses.setdefault("403", _answer("the key's scope does not cover this operation", _MESSAGE))
    return schema


def install(app: FastAPI, keys_configured: bool) -> None:
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = document_access(generate(), keys_configured)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
