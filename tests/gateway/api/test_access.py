"""API keys and scopes over HTTP (gateway.api.access): every route's scope, 401/403, open probes and docs, keys from
the variable and the file, startup refusals, and keys never shown."""

from __future__ import annotations

import logging

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from gateway.app import ROUTERS, create_app
from gateway.decisions.access import AccessConfigError
from tests.gateway.api.support import settings

CURATE_KEY = "curate-key-Zq81"
ADMIN_KEY = "admin-key-Pw27"
KEYS = f"curate:{CURATE_KEY},admin:{ADMIN_KEY}"

# Every route of the app and the scope it needs (None: open). Written out here, not derived from the rule, so a route
# added without a decision fails test_the_table_covers_every_route.
ROUTES = {
    ("POST", "/v1/select"): "curate",
    ("POST", "/v1/report"): "curate",
    ("POST", "/v1/dedup"): "curate",
    ("POST", "/v1/search"): "curate",
    ("POST", "/v1/placeholders"): "admin",
    ("GET", "/v1/placeholders"): "admin",
    ("DELETE", "/v1/placeholders/{placeholder_id}"): "admin",
    ("POST", "/v1/index"): "admin",
    ("GET", "/v1/index"): "admin",
    ("DELETE", "/v1/index/{product_id:path}"): "admin",
    ("GET", "/healthz"): None,
    ("GET", "/readyz"): None,
    ("GET", "/metrics"): None,
}
OPEN_DOCS = ["/docs", "/openapi.json", "/redoc"]


def concrete(path: str) -> str:
    return path.replace("{placeholder_id}", "ph-1").replace("{product_id:path}", "shop/p-1")


def call(client: TestClient, method: str, path: str, key: str | None = None):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    body = {"json": {}} if method == "POST" else {}
    return client.request(method, concrete(path), headers=headers, **body)


@pytest.fixture(scope="module")
def keyed():
    with TestClient(create_app(settings(api_keys=KEYS, rate_limit_per_s=0))) as client:
        yield client


def test_the_table_covers_every_route():
    routes = {(m, r.path) for router in ROUTERS for r in router.routes if isinstance(r, APIRoute) for m in r.methods}
    assert routes == set(ROUTES)


@pytest.mark.parametrize(("method", "path"), [k for k, v in ROUTES.items() if v])
def test_no_key_is_401_with_a_bearer_challenge(keyed, method, path):
    response = call(keyed, method, path)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="imgsel"'
    assert "missing API key" in response.json()["message"]


@pytest.mark.parametrize(("method", "path"), [k for k, v in ROUTES.items() if v])
def test_unknown_key_is_401(keyed, method, path):
    response = call(keyed, method, path, key="curate-key-Zq8")  # a prefix of a real key
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


@pytest.mark.parametrize(("method", "path"), [k for k, v in ROUTES.items() if v == "admin"])
def test_curate_key_on_shared_state_is_403(keyed, method, path):
    response = call(keyed, method, path, key=CURATE_KEY)
    assert response.status_code == 403
    assert "needs admin" in response.json()["message"] and CURATE_KEY not in response.text


@pytest.mark.parametrize(("method", "path"), [k for k, v in ROUTES.items() if v])
def test_the_right_key_passes_the_door(keyed, method, path):
    keys = [ADMIN_KEY] + ([CURATE_KEY] if ROUTES[method, path] == "curate" else [])
    for key in keys:
        # Past the door the route answers on its own terms: 422 for an empty body, 404 for an unknown id, 200.
        assert call(keyed, method, path, key=key).status_code in (200, 404, 422)


@pytest.mark.parametrize("path", [p for (_, p), v in ROUTES.items() if v is None] + OPEN_DOCS)
def test_probes_metrics_and_docs_stay_open(keyed, path):
    assert keyed.get(path).status_code in (200, 503)  # /readyz is 503 with no Triton, never 401


def test_unknown_paths_need_a_key_too(keyed):
    assert keyed.get("/v2/anything").status_code == 401
    assert keyed.get("/v2/anything", headers={"Authorization": f"Bearer {ADMIN_KEY}"}).status_code == 404


def test_keys_from_a_file(tmp_path):
    keys_file = tmp_path / "keys"
    keys_file.write_text(f"# mounted Secret\n\nadmin:{ADMIN_KEY}\n")
    with TestClient(create_app(settings(api_keys_file=str(keys_file)))) as client:
        assert client.get("/v1/index").status_code == 401
        assert client.get("/v1/index", headers={"Authorization": f"Bearer {ADMIN_KEY}"}).status_code == 200


def test_no_keys_configured_is_open(client):
    assert client.get("/v1/placeholders").status_code == 200


@pytest.mark.parametrize(
    ("overrides", "names"),
    [
        ({"api_keys": f"curate{CURATE_KEY}"}, "IMGSEL_API_KEYS entry 1"),
        ({"api_keys": f"owner:{CURATE_KEY}"}, "IMGSEL_API_KEYS entry 1"),
        ({"api_keys_file": "/nonexistent/imgsel-keys"}, "IMGSEL_API_KEYS_FILE=/nonexistent/imgsel-keys"),
        ({"host": "0.0.0.0"}, "IMGSEL_HOST=0.0.0.0"),
    ],
)
def test_startup_refusals_name_the_variable_never_the_key(overrides, names):
    with pytest.raises(AccessConfigError) as raised:
        create_app(settings(**overrides))
    assert names in str(raised.value) and CURATE_KEY not in str(raised.value)


def test_a_non_loopback_host_is_allowed_with_keys_or_when_told():
    create_app(settings(host="0.0.0.0", api_keys=KEYS))
    create_app(settings(host="0.0.0.0", allow_unauthenticated=True))


def test_keys_never_reach_logs_or_metrics(keyed, caplog):
    with caplog.at_level(logging.DEBUG):
        keyed.get("/v1/index", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        keyed.post("/v1/select", json={}, headers={"Authorization": f"Bearer {CURATE_KEY}"})
        keyed.get("/v1/index", headers={"Authorization": f"Bearer {CURATE_KEY}x"})
    logged = [record.__dict__ for record in caplog.records if record.name == "imgsel.access"]
    assert logged[0]["key_id"].startswith("admin-") and logged[1]["key_id"].startswith("curate-")
    assert logged[2]["key_id"] is None and logged[2]["status"] == 401
    text = "\n".join(str(entry) for entry in logged) + caplog.text + keyed.get("/metrics").text
    assert ADMIN_KEY not in text and CURATE_KEY not in text
