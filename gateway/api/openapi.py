"""The OpenAPI document says what the access middleware does: a bearer security scheme on every operation that needs a
key (from gateway.decisions.access.required_scope, the one copy of the rule), the scope in its description, and the
401/403/413/429 answers it can get, so the docs and schemathesis know them."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from gateway.decisions.access import required_scope

SCHEME = "apiKey"
_MESSAGE = {"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]}
_LIMIT = {
    "type": "object",
    "properties": {"message": {"type": "string"}, "limit": {"type": "number"}, "field": {"type": "string"}},
    "required": ["message", "limit"],
}
_RETRY_AFTER = {"Retry-After": {"description": "seconds until the request may succeed", "schema": {"type": "string"}}}


def _answer(description: str, schema: dict, headers: dict | None = None) -> dict:
    answer: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": schema}}}
    return answer | ({"headers": headers} if headers else {})


def document_access(schema: dict) -> dict:
    """Adds the scheme and, per operation, its security and the access/limit answers (in place; returns it)."""
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})[SCHEME] = {
        "type": "http",
        "scheme": "bearer",
        "description": "API key (IMGSEL_API_KEYS). Scope `curate`: select, dedup, report, search; scope `admin`: "
        "everything. Required only when keys are configured.",
    }
    for path, operations in schema.get("paths", {}).items():
        scope = required_scope(path)
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if "requestBody" in operation:
                responses.setdefault("413", _answer("request body or image count over a limit", _LIMIT))
            if scope is None:
                continue
            operation["security"] = [{SCHEME: []}]
            note = f"Needs an API key with scope `{scope.value}`" + (" or `admin`." if scope.value != "admin" else ".")
            operation["description"] = f"{operation.get('description', '')}\n\n{note}".strip()
            responses.setdefault("401", _answer("no or unknown API key", _MESSAGE))
            responses.setdefault("403", _answer("the key's scope does not cover this operation", _MESSAGE))
            responses.setdefault("429", _answer("rate limit exceeded", _LIMIT, _RETRY_AFTER))
    return schema


def install(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = document_access(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
