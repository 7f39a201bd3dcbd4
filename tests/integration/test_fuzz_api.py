"""Schemathesis against the gateway's /openapi.json, every operation, over real HTTP: no 5xx, every response valid
against the schema (status code, content type, body), schema-invalid requests refused.

Bounded: FUZZ_EXAMPLES schema-valid and as many schema-invalid cases per operation (default 20, fixed seed);
`make fuzz` runs more.
The gateway is a second one over the session stack's Triton with a data directory of its own, because the fuzz
writes and deletes placeholders and index entries that the other integration tests count on.

Never a request that makes the gateway fetch beyond loopback: the stack allows private addresses (its test images are
served from 127.0.0.1), so every string that could be read as a URL is rewritten to the loopback stub before sending.
"""

from __future__ import annotations

import os
import re
import zlib

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from loadtest.stack_processes import second_gateway
from tests.helpers import corrupt_jpeg, encode, product_photo

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
STUB_FILES = ("fuzz-product.jpg", "fuzz-corrupt.jpg", "fuzz-missing.png")
# Anything a URL parser could take a host from: a scheme, `//` or `\\` (some parsers read backslashes as slashes).
URL_LIKE = re.compile(r"(?i)^\s*[a-z][a-z0-9+.\-]*:|//|\\\\")


def loopback_only(value, stub: str, key: str | None = None):
    """`value` with every `url` field and every URL-like string replaced by one of the stub's URLs (chosen by the
    original string, so a case replays identically): the gateway can then fetch nothing but the loopback stub."""
    if isinstance(value, dict):
        return {k: loopback_only(v, stub, k) for k, v in value.items()}
    if isinstance(value, list):
        return [loopback_only(v, stub, key) for v in value]
    if isinstance(value, str) and (key == "url" or URL_LIKE.search(value)):
        return f"{stub}/{STUB_FILES[zlib.crc32(value.encode()) % len(STUB_FILES)]}"
    return value


def test_loopback_only_leaves_no_fetchable_address():
    stub = "http://127.0.0.1:9"
    body = {
        "images": [
            {"id": "a", "url": "http://169.254.169.254/latest/meta-data"},
            {"id": "//evil.example", "data": "aGk=", "url": "not a url at all"},
            {"id": "c", "supplier": "HTTPS:\\\\10.0.0.1\\x", "nested": [{"url": 7}, "ftp://x"]},
        ],
        "query": " gopher:x",
    }
    cleaned = loopback_only(body, stub)
    strings = re.findall(r"'([^']*)'", repr(cleaned))
    assert all(not URL_LIKE.search(s) or s.startswith(stub + "/") for s in strings)
    assert cleaned["images"][1]["url"].startswith(stub) and cleaned["images"][1]["data"] == "aGk="
    assert cleaned["images"][2]["nested"][0]["url"] == 7  # not a string: the schema refuses it, nothing to fetch
    assert loopback_only(body, stub) == cleaned  # deterministic


@pytest.fixture(scope="module")
def fuzz_gateway(stack, image_server, tmp_path_factory):
    (image_server.root / STUB_FILES[0]).write_bytes(encode(product_photo(160, seed=4)))
    (image_server.root / STUB_FILES[1]).write_bytes(corrupt_jpeg(encode(product_photo(160, seed=5))))
    env = {"IMGSEL_FETCH_ALLOW_PRIVATE": "true"}
    with second_gateway(stack, tmp_path_factory.mktemp("fuzz-api-data"), env) as gateway:
        yield f"http://{gateway.host}:{gateway.port}"


def fuzz_operation(operation, base_url: str, stub: str) -> tuple[int, dict[str, str]]:
    """Run FUZZ_EXAMPLES positive and as many negative cases of one operation; (cases sent, failure -> example)."""
    failures: dict[str, str] = {}
    sent = [0]
    strategy = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(GenerationMode.NEGATIVE)

    @given(case=strategy)
    @settings(
        max_examples=2 * EXAMPLES,
        derandomize=True,  # the same cases on every run (CI)
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],  # no shrinking: every distinct failure is collected, not minimised
    )
    def run(case):
        if isinstance(case.body, dict | list | str):
            case.body = loopback_only(case.body, stub)
        if isinstance(case.query, dict):
            case.query = loopback_only(case.query, stub)
        sent[0] += 1
        try:
            case.call_and_validate(base_url=base_url, checks=CHECKS, timeout=120)
        except FailureGroup as group:
            for failure in group.exceptions:
                failures.setdefault(
                    f"{operation.label}: {failure.title}", f"{failure.message[:300]} | {case.body!r:.300}"
                )
        except requests.RequestException as error:  # a hung or dropped connection
            failures.setdefault(f"{operation.label}: {type(error).__name__}", str(error)[:300])

    run()
    return sent[0], failures


def test_every_operation_answers_within_its_schema(fuzz_gateway, image_server):
    schema = schemathesis.openapi.from_url(f"{fuzz_gateway}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 13  # select, report, dedup, placeholders x3, index x3, search, probes x3
    sent, failures = {}, {}
    for operation in operations:
        sent[operation.label], found = fuzz_operation(operation, fuzz_gateway, image_server.url)
        failures |= found
    print(f"schemathesis cases per operation: {sent}")
    assert all(sent.values()), sent
    assert failures == {}, "\n".join(f"{k}\n    {v}" for k, v in failures.items())
